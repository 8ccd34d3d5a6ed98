// Package config reads the process configuration from the environment.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/rediscluster"
)

// Config is the whole configuration of one process.
type Config struct {
	HTTPAddr         string
	MySQLDSN         string
	RedisURL         string
	AMQPURL          string
	ElasticsearchURL string
	Namespace        string

	LogFormat string // "text" or "json"
	LogLevel  string // "debug", "info", "warn" or "error"

	// MySQLMaxConns caps the connections of one process; MariaDB's default
	// max_connections (151) is shared by every process and tool.
	MySQLMaxConns int
	// PublishChannels is the number of AMQP channels the publisher sends on;
	// each carries many messages awaiting their confirms.
	PublishChannels int
	// StorePrefetch is how many broker messages the event store writer
	// holds unacknowledged, shared by the partitions: each partition a
	// process writes gets StorePrefetch / partitions, 8 at least. A
	// partition's append batch is at most its share.
	StorePrefetch int
	// StoreQueueBytes bounds the bytes of messages a partition's queue holds
	// waiting for its writer; past it, publishes to it are refused and
	// commands answer 503. 0 for no bound.
	StoreQueueBytes int
	// Partitions is the number of event log partitions `chat migrate` gives
	// a namespace it migrates for the first time; fixed from then on.
	Partitions int
	// MaxInFlight caps concurrent command requests; beyond it they get 503.
	MaxInFlight int
	// MaxReadsInFlight caps concurrent read requests (gets, lists, searches)
	// apart from commands; beyond it they get 503.
	MaxReadsInFlight int
	// BodyTimeout bounds the reading of a request's body once its headers
	// are in; the body is read before the request takes a slot.
	BodyTimeout time.Duration
	// MaxConnsPerClient caps the connections one client (remote IP
	// address) holds open at once; 0 caps nothing.
	MaxConnsPerClient int
	// ShutdownTimeout bounds the graceful drain on SIGTERM.
	ShutdownTimeout time.Duration
	// PublishTimeout bounds a command's wait for the broker's confirm.
	PublishTimeout time.Duration
	// IdempotencyKeys caps the Idempotency-Keys one application (and, for
	// new applications, the namespace) holds at once; they live 24 hours.
	IdempotencyKeys int
	// DebugAddr, when set, is where Go's profiles are served.
	DebugAddr string
	// StreamMax caps the message streams and long polls one process holds
	// open; beyond it they get 503.
	StreamMax int
	// StreamRecheck is how often a stream re-reads its chat without a
	// wake-up: the most a lost wake-up delays a delivery.
	StreamRecheck time.Duration
	// StreamWriteTimeout bounds each write to a stream; a client that does
	// not take an event within it is disconnected.
	StreamWriteTimeout time.Duration
	// RateLimitCommands and RateLimitReads are each application's default
	// budgets, in requests per second; 0 is no limit.
	RateLimitCommands, RateLimitReads int
	// RateLimitBurst is how many seconds of its rate an idle budget holds.
	RateLimitBurst int
}

// Variable describes one environment variable the binary reads.
type Variable struct {
	Name    string
	Default string
	Help    string
	set     func(c *Config, v string) error
}

// formerNames are the former names of renamed variables, read when the
// variable is unset, so that a deployment's settings keep their effect.
var formerNames = map[string]string{"CHAT_STORE_PREFETCH": "CHAT_STORE_CONSUMERS"}

// Former is the variable's former name, "" when it has none.
func (v Variable) Former() string { return formerNames[v.Name] }

var namespacePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// Variables lists every environment variable the binary reads, in the order
// docs/configuration.md documents them.
func Variables() []Variable {
	return []Variable{
		{"CHAT_HTTP_ADDR", ":8080", "address the HTTP API listens on", func(c *Config, v string) error {
			if !strings.Contains(v, ":") {
				return fmt.Errorf("want host:port, got %q", v)
			}
			c.HTTPAddr = v
			return nil
		}},
		{"CHAT_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/chat?parseTime=true", "MySQL or MariaDB data source name", func(c *Config, v string) error {
			cfg, err := mysql.ParseDSN(v)
			if err != nil {
				return err
			}
			if cfg.DBName == "" {
				return fmt.Errorf("the DSN names no database")
			}
			c.MySQLDSN = v
			return nil
		}},
		{"CHAT_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL; for a Redis Cluster, redis://h1:7000?addr=h2:7001&addr=h3:7002", redisSetter},
		{"CHAT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL, or the URLs of several nodes of one cluster, comma-separated (same scheme, user, password and vhost): a process connects to the first that answers and reconnects to another when its node goes", setAMQPURLs},
		{"CHAT_ELASTICSEARCH_URL", "http://127.0.0.1:9200", "Elasticsearch URL", urlSetter(func(c *Config) *string { return &c.ElasticsearchURL }, "http", "https")},
		{"CHAT_NAMESPACE", "chat", "prefix of tables, Redis keys, exchanges, queues and indices", func(c *Config, v string) error {
			if !namespacePattern.MatchString(v) {
				return fmt.Errorf("want a lowercase letter then up to 39 of [a-z0-9_], got %q", v)
			}
			c.Namespace = v
			return nil
		}},
		{"CHAT_LOG_FORMAT", "text", "log format: text or json", func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("want text or json, got %q", v)
			}
			c.LogFormat = v
			return nil
		}},
		{"CHAT_LOG_LEVEL", "info", "log level: debug, info, warn or error", func(c *Config, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error, got %q", v)
		}},
		{"CHAT_MYSQL_MAX_CONNS", "20", "most MySQL connections one process opens", intSetter(func(c *Config) *int { return &c.MySQLMaxConns }, 4, 1000)},
		{"CHAT_PUBLISH_CHANNELS", "8", "AMQP channels the publisher sends on, each carrying many messages awaiting their confirms", intSetter(func(c *Config) *int { return &c.PublishChannels }, 1, 1000)},
		{"CHAT_STORE_PREFETCH", "1024", "broker messages the event store writer holds unacknowledged, shared by the namespace's partitions (each at least 8); what they hold while an append commits makes the next append; CHAT_STORE_CONSUMERS, its former name, is read when it is unset", intSetter(func(c *Config) *int { return &c.StorePrefetch }, 1, 100000)},
		{"CHAT_STORE_QUEUE_BYTES", "8388608", "most bytes of events a partition's queue holds waiting for its writer; past it, commands of that partition's applications answer 503 with Retry-After; set when a queue is declared (`chat migrate` declares an idle queue anew); 0: no bound", intSetter(func(c *Config) *int { return &c.StoreQueueBytes }, 0, 1<<30)},
		{"CHAT_PARTITIONS", "16", "event log partitions of a namespace, fixed when `chat migrate` first migrates it (read by migrate only)", intSetter(func(c *Config) *int { return &c.Partitions }, 1, 1024)},
		{"CHAT_MAX_IN_FLIGHT", "1024", "command requests served at once; more get 503", intSetter(func(c *Config) *int { return &c.MaxInFlight }, 1, 1000000)},
		{"CHAT_MAX_READS_IN_FLIGHT", "128", "read requests (gets, lists, searches) served at once; more get 503", intSetter(func(c *Config) *int { return &c.MaxReadsInFlight }, 1, 1000000)},
		{"CHAT_HTTP_BODY_TIMEOUT", "5s", "how long a request's body may take to arrive once its headers are in; a slower one is answered 408", durationSetter(func(c *Config) *time.Duration { return &c.BodyTimeout })},
		{"CHAT_HTTP_MAX_CONNS_PER_CLIENT", "1024", "connections one client (remote IP address) holds open at once; more are answered 503 and closed; 0 for no bound (behind a proxy, whose address is every client's)", intSetter(func(c *Config) *int { return &c.MaxConnsPerClient }, 0, 1000000)},
		{"CHAT_SHUTDOWN_TIMEOUT", "30s", "how long a graceful shutdown may take", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"CHAT_PUBLISH_TIMEOUT", "2s", "how long a command may take from reserving a number to the broker's confirm before answering 503 (its event is never sent later)", durationSetter(func(c *Config) *time.Duration { return &c.PublishTimeout })},
		{"CHAT_IDEMPOTENCY_KEYS", "100000", "Idempotency-Keys one application holds at once (each for 24 h); more get 429", intSetter(func(c *Config) *int { return &c.IdempotencyKeys }, 1, 100000000)},
		{"CHAT_STREAM_MAX", "10000", "message streams and long polls one process holds open at once; more get 503", intSetter(func(c *Config) *int { return &c.StreamMax }, 1, 10000000)},
		{"CHAT_STREAM_RECHECK", "3s", "how often an open stream or long poll reads its chat again without a wake-up: the most a lost wake-up delays a delivery", durationSetter(func(c *Config) *time.Duration { return &c.StreamRecheck })},
		{"CHAT_STREAM_WRITE_TIMEOUT", "10s", "how long one write to a stream may take; a client that stops reading is disconnected (it reconnects and resumes)", durationSetter(func(c *Config) *time.Duration { return &c.StreamWriteTimeout })},
		{"CHAT_RATE_LIMIT_COMMANDS", "0", "commands (POST, PATCH, DELETE) per second each application may send, over every process; more get 429; 0: no limit (`chat limits set` sets an application's own)", intSetter(func(c *Config) *int { return &c.RateLimitCommands }, 0, 1000000)},
		{"CHAT_RATE_LIMIT_READS", "0", "reads (gets, lists, searches, streams opened) per second each application may send, over every process; more get 429; 0: no limit", intSetter(func(c *Config) *int { return &c.RateLimitReads }, 0, 1000000)},
		{"CHAT_RATE_LIMIT_BURST", "1", "seconds of its rate an application's budget holds: after that long idle, it may send that many seconds' worth at once", intSetter(func(c *Config) *int { return &c.RateLimitBurst }, 1, 3600)},
		{"CHAT_DEBUG_ADDR", "", "address Go's profiles (/debug/pprof/) are served on, apart from the API; empty: not served", func(c *Config, v string) error {
			if v != "" && !strings.Contains(v, ":") {
				return fmt.Errorf("want host:port, got %q", v)
			}
			c.DebugAddr = v
			return nil
		}},
	}
}

func urlSetter(field func(c *Config) *string, schemes ...string) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil {
			return err
		}
		for _, s := range schemes {
			if u.Scheme == s && u.Host != "" {
				*field(c) = strings.TrimRight(v, "/")
				return nil
			}
		}
		return fmt.Errorf("want a %s URL with a host, got %q", strings.Join(schemes, " or "), v)
	}
}

// setAMQPURLs accepts one AMQP URL or several of one cluster's nodes. They
// must agree on all but the host and port: a connection to any node uses
// the first one's credentials and vhost.
func setAMQPURLs(c *Config, v string) error {
	var (
		first *url.URL
		urls  []string
	)
	for i, raw := range strings.Split(v, ",") {
		raw = strings.TrimSpace(raw)
		var one string
		if err := urlSetter(func(*Config) *string { return &one }, "amqp", "amqps")(c, raw); err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		u, _ := url.Parse(one) // parsed by urlSetter
		if first == nil {
			first = u
		} else if u.Scheme != first.Scheme || u.User.String() != first.User.String() || u.Path != first.Path {
			return fmt.Errorf("node %d: %q differs from the first URL in scheme, user, password or vhost; the nodes of one cluster share them", i+1, u.Redacted())
		}
		urls = append(urls, one)
	}
	c.AMQPURL = strings.Join(urls, ",")
	return nil
}

// redisSetter accepts one server's URL or a cluster's, as the client will
// read them.
func redisSetter(c *Config, v string) error {
	if err := urlSetter(func(c *Config) *string { return &c.RedisURL }, "redis", "rediss")(c, v); err != nil {
		return err
	}
	if _, err := rediscluster.Check(v); err != nil {
		return err
	}
	return nil
}

func intSetter(field func(c *Config) *int, lo, hi int) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d, got %q", lo, hi, v)
		}
		*field(c) = n
		return nil
	}
}

func durationSetter(field func(c *Config) *time.Duration) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 30s, got %q", v)
		}
		*field(c) = d
		return nil
	}
}

// Load builds a Config from lookup (os.LookupEnv in production). Every
// invalid value is reported, each naming its variable, so that one start
// shows all there is to fix.
func Load(lookup func(string) (string, bool)) (Config, error) {
	var (
		c    Config
		errs []error
	)
	for _, v := range Variables() {
		value, ok := lookup(v.Name)
		if former := v.Former(); (!ok || value == "") && former != "" {
			value, ok = lookup(former)
		}
		if !ok || value == "" {
			value = v.Default
		}
		if err := v.set(&c, value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
