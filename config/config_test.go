package config

import (
	"os"
	"strings"
	"testing"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{HTTPAddr: ":8080", MySQLDSN: "root@tcp(127.0.0.1:3306)/chat?parseTime=true", RedisURL: "redis://127.0.0.1:6379/0",
		AMQPURL: "amqp://guest:guest@127.0.0.1:5672", ElasticsearchURL: "http://127.0.0.1:9200", Namespace: "chat"}
	if c.HTTPAddr != want.HTTPAddr || c.MySQLDSN != want.MySQLDSN || c.RedisURL != want.RedisURL ||
		c.AMQPURL != want.AMQPURL || c.ElasticsearchURL != want.ElasticsearchURL || c.Namespace != want.Namespace {
		t.Errorf("defaults %+v", c)
	}
}

func TestInvalidValueNamesTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, value string }{
		{"CHAT_HTTP_ADDR", "8080"},
		{"CHAT_MYSQL_DSN", "not a dsn"},
		{"CHAT_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/"},
		{"CHAT_REDIS_URL", "http://127.0.0.1:6379"},
		{"CHAT_REDIS_URL", "redis://127.0.0.1:6379/0?nonsense=1"},
		{"CHAT_REDIS_URL", "redis://127.0.0.1:7000?addr=127.0.0.1:7001&nonsense=1"},
		{"CHAT_AMQP_URL", "amqp://"},
		{"CHAT_AMQP_URL", "amqp://g:g@a:5672,"},
		{"CHAT_AMQP_URL", "amqp://g:g@a:5672,amqps://g:g@b:5671"},
		{"CHAT_AMQP_URL", "amqp://g:g@a:5672,amqp://x:g@b:5672"},
		{"CHAT_AMQP_URL", "amqp://g:g@a:5672/v,amqp://g:g@b:5672/w"},
		{"CHAT_ELASTICSEARCH_URL", "127.0.0.1:9200"},
		{"CHAT_NAMESPACE", "Chat"},
		{"CHAT_NAMESPACE", "chat-1"},
		{"CHAT_LOG_FORMAT", "xml"},
		{"CHAT_LOG_LEVEL", "trace"},
		{"CHAT_MYSQL_MAX_CONNS", "0"},
		{"CHAT_STORE_PREFETCH", "lots"},
		{"CHAT_MAX_READS_IN_FLIGHT", "0"},
		{"CHAT_SHUTDOWN_TIMEOUT", "-1s"},
		{"CHAT_IDEMPOTENCY_KEYS", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := Load(lookupFrom(map[string]string{tc.name: tc.value}))
			if err == nil || !strings.HasPrefix(err.Error(), tc.name+":") {
				t.Errorf("Load = %v, want an error naming %s", err, tc.name)
			}
		})
	}
}

// TestFormerNames: a renamed variable's former name still takes effect
// when the variable is unset, and the new name wins when both are set.
func TestFormerNames(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want int
	}{
		{nil, 1024},
		{map[string]string{"CHAT_STORE_CONSUMERS": "64"}, 64},
		{map[string]string{"CHAT_STORE_PREFETCH": "128"}, 128},
		{map[string]string{"CHAT_STORE_PREFETCH": "128", "CHAT_STORE_CONSUMERS": "64"}, 128},
	}
	for _, tc := range tests {
		c, err := Load(lookupFrom(tc.env))
		if err != nil || c.StorePrefetch != tc.want {
			t.Errorf("%v: StorePrefetch %d, %v; want %d", tc.env, c.StorePrefetch, err, tc.want)
		}
	}
	if _, err := Load(lookupFrom(map[string]string{"CHAT_STORE_CONSUMERS": "lots"})); err == nil || !strings.HasPrefix(err.Error(), "CHAT_STORE_PREFETCH:") {
		t.Errorf("a bad value under the former name: %v, want an error naming CHAT_STORE_PREFETCH", err)
	}
}

func TestAMQPNodeList(t *testing.T) {
	t.Parallel()
	tests := []struct{ value, want string }{
		{"amqp://g:g@a:5672/", "amqp://g:g@a:5672"},
		{"amqp://g:g@a:5672/, amqp://g:g@b:5673/", "amqp://g:g@a:5672,amqp://g:g@b:5673"},
		{"amqps://g:g@a/v,amqps://g:g@b/v,amqps://g:g@c/v", "amqps://g:g@a/v,amqps://g:g@b/v,amqps://g:g@c/v"},
	}
	for _, tc := range tests {
		c, err := Load(lookupFrom(map[string]string{"CHAT_AMQP_URL": tc.value}))
		if err != nil || c.AMQPURL != tc.want {
			t.Errorf("CHAT_AMQP_URL=%q: got %q, %v; want %q", tc.value, c.AMQPURL, err, tc.want)
		}
	}
}

func TestRedisURLForms(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"redis://127.0.0.1:6379/0",
		"rediss://user:secret@redis.example:6380/2",
		"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002",
	} {
		c, err := Load(lookupFrom(map[string]string{"CHAT_REDIS_URL": url}))
		if err != nil || c.RedisURL != url {
			t.Errorf("CHAT_REDIS_URL=%s: %q, %v", url, c.RedisURL, err)
		}
	}
}

// TestDocsListEveryVariable keeps the configuration table of
// docs/configuration.md true.
func TestDocsListEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables() {
		row := "| `" + v.Name + "` | `" + v.Default + "` |"
		if v.Default == "" {
			row = "| `" + v.Name + "` | (unset) |"
		}
		if !strings.Contains(string(readme), row) {
			t.Errorf("docs/configuration.md has no row %q", row)
		}
	}
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"CHAT_HTTP_ADDR":                 "8080",
		"CHAT_REDIS_URL":                 "http://x",
		"CHAT_MAX_IN_FLIGHT":             "0",
		"CHAT_PUBLISH_TIMEOUT":           "-1s",
		"CHAT_HTTP_BODY_TIMEOUT":         "0s",
		"CHAT_HTTP_MAX_CONNS_PER_CLIENT": "-1",
	}
	_, err := Load(func(k string) (string, bool) { v, ok := bad[k]; return v, ok })
	if err == nil {
		t.Fatal("no error")
	}
	for name := range bad {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(bad) {
		t.Errorf("%d lines of error, want one per bad variable (%d): %q", got, len(bad), err)
	}
}
