package deployments

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-sql-driver/mysql"

	"github.com/chatsys/chat/rediscluster"
)

const (
	clusterComposePath = "../docker-compose.cluster.yml"
	rabbitConfPath     = "cluster/rabbitmq.conf"
	redisInitPath      = "cluster/redis-cluster-init.sh"
)

// partitionsVariable is the number of partitions of the event log, which
// `chat migrate` reads when it first migrates a namespace. The cluster files
// set it explicitly.
const partitionsVariable = "CHAT_PARTITIONS"

// chatVariable reports whether the chat processes read name.
func chatVariable(known map[string]bool, name string) bool { return known[name] }

// checkPartitions checks a CHAT_PARTITIONS value: a whole number of
// partitions, 16 in the cluster files.
func checkPartitions(t *testing.T, where, v string) {
	t.Helper()
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1024 {
		t.Errorf("%s: %s = %q, want a whole number of partitions", where, partitionsVariable, v)
	} else if n != 16 {
		t.Errorf("%s: %s = %d, want 16", where, partitionsVariable, n)
	}
}

// The whole file, every profile enabled, and what a plain `up` starts.
var (
	loadClusterProject        = sync.OnceValues(func() (*types.Project, error) { return loadCompose(clusterComposePath, "*") })
	loadClusterDefaultProject = sync.OnceValues(func() (*types.Project, error) { return loadCompose(clusterComposePath) })
)

func clusterProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadClusterProject()
	if err != nil {
		t.Fatalf("load %s: %v", clusterComposePath, err)
	}
	return p
}

var (
	rabbitNodes = []string{"rabbitmq-0", "rabbitmq-1", "rabbitmq-2"}
	redisNodes  = []string{"redis-0", "redis-1", "redis-2", "redis-3", "redis-4", "redis-5"}
)

func TestClusterComposeServices(t *testing.T) {
	t.Parallel()
	p := clusterProject(t)
	base := project(t)
	if p.Name != "chat-cluster" {
		t.Errorf("project name = %q, want chat-cluster (fixed, and apart from docker-compose.yml's volumes)", p.Name)
	}
	root, err := filepath.Abs(rootDir)
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		image     string // repository, for services run from a public image
		command   []string
		stateful  bool
		chatImage bool
		replicas  int
		profile   string
	}
	services := map[string]want{
		"mysql":              {image: "mysql", stateful: true},
		"elasticsearch":      {image: "docker.elastic.co/elasticsearch/elasticsearch", stateful: true},
		"redis-cluster-init": {image: "redis"},
		"migrate":            {command: []string{"migrate"}, chatImage: true},
		"api":                {command: []string{"serve"}, chatImage: true, replicas: 2},
		"worker":             {command: []string{"work"}, chatImage: true, replicas: 2},
		"proxy":              {image: "nginx"},
		"prometheus":         {image: "prom/prometheus", stateful: true, profile: "observability"},
		"grafana":            {image: "grafana/grafana", stateful: true, profile: "observability"},
	}
	for _, n := range rabbitNodes {
		services[n] = want{image: "rabbitmq", stateful: true}
	}
	for _, n := range redisNodes {
		services[n] = want{image: "redis", stateful: true}
	}
	for name := range p.Services {
		if _, ok := services[name]; !ok {
			t.Errorf("unexpected service %q: add it to this test with what it must guarantee", name)
		}
	}

	var chatImages []string
	for name, w := range services {
		s := service(t, p, name)
		if w.image != "" {
			if repo, _, _ := imageRef(s.Image); repo != w.image {
				t.Errorf("%s: image %q, want %s", name, s.Image, w.image)
			}
			if s.Build != nil {
				t.Errorf("%s: runs a public image, should not build", name)
			}
		}
		if s.Image != "" {
			checkPinned(t, name, s.Image)
		}
		if w.command != nil && !slices.Equal(s.Command, w.command) {
			t.Errorf("%s: command %q, want %q", name, s.Command, w.command)
		}
		if got := s.GetScale(); w.replicas != 0 && got != w.replicas {
			t.Errorf("%s: %d replicas, want %d", name, got, w.replicas)
		}
		if s.ContainerName != "" {
			t.Errorf("%s has container_name %q", name, s.ContainerName)
		}
		if want := []string{w.profile}; w.profile == "" && len(s.Profiles) > 0 || w.profile != "" && !slices.Equal(s.Profiles, want) {
			t.Errorf("%s: profiles %q, want %q", name, s.Profiles, w.profile)
		}
		if w.stateful {
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
				t.Errorf("%s: no health check", name)
			}
			volumes := 0
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume {
					if _, ok := p.Volumes[v.Source]; !ok {
						t.Errorf("%s: volume %q is not declared", name, v.Source)
					}
					volumes++
				}
			}
			if volumes != 1 {
				t.Errorf("%s: %d named volumes, want its data on one of its own", name, volumes)
			}
		}
		if w.chatImage {
			chatImages = append(chatImages, s.Image)
			if s.Build == nil || s.Build.Context != root || filepath.ToSlash(s.Build.Dockerfile) != "deployments/Dockerfile" {
				t.Errorf("%s: not built from deployments/Dockerfile in the repository root: %+v", name, s.Build)
			}
		}
		// Only the proxy and the observability tools publish ports.
		if len(s.Ports) > 0 && name != "proxy" && w.profile == "" {
			t.Errorf("%s publishes %+v", name, s.Ports)
		}
	}
	slices.Sort(chatImages)
	if chatImages = slices.Compact(chatImages); len(chatImages) != 1 || chatImages[0] == "" {
		t.Errorf("migrate, api and worker build images %q; name one image for all three", chatImages)
	}

	// No two services share a named volume: each node keeps its own data.
	owner := map[string]string{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			if other, dup := owner[v.Source]; dup {
				t.Errorf("volume %s is used by %s and %s", v.Source, other, name)
			}
			owner[v.Source] = name
		}
	}

	// MySQL, Elasticsearch and the proxy are those of docker-compose.yml.
	for _, name := range []string{"mysql", "elasticsearch", "proxy"} {
		s, b := service(t, p, name), service(t, base, name)
		for what, pair := range map[string][2]any{
			"image":       {s.Image, b.Image},
			"command":     {s.Command, b.Command},
			"environment": {s.Environment, b.Environment},
			"healthcheck": {s.HealthCheck, b.HealthCheck},
			"ports":       {s.Ports, b.Ports},
			"volumes":     {s.Volumes, b.Volumes},
		} {
			got, err1 := json.Marshal(pair[0])
			want, err2 := json.Marshal(pair[1])
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs from docker-compose.yml's:\n%s\n%s", name, what, got, want)
			}
		}
	}
}

func TestClusterComposeDependencies(t *testing.T) {
	t.Parallel()
	p := clusterProject(t)
	checkDependencyConditions(t, p)

	migrate := map[string]string{
		"mysql":              types.ServiceConditionHealthy,
		"redis-cluster-init": types.ServiceConditionCompletedSuccessfully,
	}
	for _, n := range rabbitNodes {
		migrate[n] = types.ServiceConditionHealthy
	}
	chat := map[string]string{
		"elasticsearch": types.ServiceConditionHealthy,
		"migrate":       types.ServiceConditionCompletedSuccessfully,
	}
	for k, v := range migrate {
		chat[k] = v
	}
	redisInit := map[string]string{}
	for _, n := range redisNodes {
		redisInit[n] = types.ServiceConditionHealthy
	}
	want := map[string]map[string]string{"migrate": migrate, "api": chat, "worker": chat, "redis-cluster-init": redisInit}
	for name, deps := range want {
		s := service(t, p, name)
		for dep, cond := range deps {
			if got, ok := s.DependsOn[dep]; !ok {
				t.Errorf("%s does not depend on %s", name, dep)
			} else if got.Condition != cond {
				t.Errorf("%s depends on %s with condition %q, want %q", name, dep, got.Condition, cond)
			}
		}
	}
	if s := service(t, p, "redis-cluster-init"); s.Restart != "" && s.Restart != types.RestartPolicyNo {
		t.Errorf("redis-cluster-init restarts (%q); it is a one-shot", s.Restart)
	}

	// A plain `up` (no profile) starts everything but the observability
	// tools, and nothing it starts waits for them.
	d, err := loadClusterDefaultProject()
	if err != nil {
		t.Fatal(err)
	}
	checkDependencyConditions(t, d)
	for _, name := range []string{"prometheus", "grafana"} {
		if _, ok := d.Services[name]; ok {
			t.Errorf("%s starts without --profile observability", name)
		}
	}
	if len(d.Services) != len(p.Services)-2 {
		t.Errorf("a plain up starts %d services of %d", len(d.Services), len(p.Services))
	}
}

// rabbitConf reads deployments/cluster/rabbitmq.conf: key = value lines.
func rabbitConf(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(rabbitConfPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	conf := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key = value", rabbitConfPath, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, dup := conf[k]; dup {
			t.Errorf("%s sets %s twice", rabbitConfPath, k)
		}
		conf[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestClusterComposeRabbitMQ(t *testing.T) {
	t.Parallel()
	p := clusterProject(t)
	conf, err := filepath.Abs(rabbitConfPath)
	if err != nil {
		t.Fatal(err)
	}

	// classic_config peer discovery, listing exactly the nodes of the file.
	rc := rabbitConf(t)
	if rc["cluster_formation.peer_discovery_backend"] != "classic_config" {
		t.Errorf("%s: cluster_formation.peer_discovery_backend = %q, want classic_config", rabbitConfPath, rc["cluster_formation.peer_discovery_backend"])
	}
	var listed []string
	for k, v := range rc {
		if strings.HasPrefix(k, "cluster_formation.classic_config.nodes.") {
			listed = append(listed, v)
		}
	}
	var want []string
	for _, n := range rabbitNodes {
		want = append(want, "rabbit@"+n)
	}
	if slices.Sort(listed); !slices.Equal(listed, want) {
		t.Errorf("%s lists the nodes %q, want %q", rabbitConfPath, listed, want)
	}

	baseImage := service(t, project(t), "rabbitmq").Image
	var cookies, users []string
	for _, name := range rabbitNodes {
		s := service(t, p, name)
		if s.Image != baseImage {
			t.Errorf("%s: image %s, docker-compose.yml runs %s", name, s.Image, baseImage)
		}
		// The node name is rabbit@<hostname>: what rabbitmq.conf lists.
		if s.Hostname != name {
			t.Errorf("%s: hostname %q, want %q (its node name is rabbit@<hostname>)", name, s.Hostname, name)
		}
		env := environment(t, s)
		cookies = append(cookies, env["RABBITMQ_ERLANG_COOKIE"])
		users = append(users, env["RABBITMQ_DEFAULT_USER"]+":"+env["RABBITMQ_DEFAULT_PASS"])
		var data, mounted bool
		for _, v := range s.Volumes {
			switch {
			case v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/rabbitmq":
				data = true
			case v.Type == types.VolumeTypeBind && v.Source == conf:
				mounted = v.Target == "/etc/rabbitmq/rabbitmq.conf" && v.ReadOnly
			}
		}
		if !data {
			t.Errorf("%s: /var/lib/rabbitmq is not on a named volume", name)
		}
		if !mounted {
			t.Errorf("%s does not mount %s read-only as /etc/rabbitmq/rabbitmq.conf", name, rabbitConfPath)
		}
		// Healthy once the node sees the whole cluster.
		hc := strings.Join(s.HealthCheck.Test, " ")
		if m := regexp.MustCompile(`await_online_nodes (\d+)`).FindStringSubmatch(hc); m == nil || m[1] != fmt.Sprint(len(rabbitNodes)) {
			t.Errorf("%s: health check %q does not wait for all %d nodes", name, hc, len(rabbitNodes))
		}
	}
	if c := slices.Compact(slices.Clone(cookies)); len(c) != 1 || c[0] == "" {
		t.Errorf("the nodes' RABBITMQ_ERLANG_COOKIE values %q: one shared cookie, please", cookies)
	}
	if u := slices.Compact(slices.Clone(users)); len(u) != 1 || u[0] == "guest:guest" || u[0] == ":" {
		t.Errorf("the nodes' default users %q: one user that is not guest", users)
	}
}

// redisNode is one redis-N service as the test reads it: its port and its
// command's --flag value pairs.
func redisNode(t *testing.T, s types.ServiceConfig) (port string, flags map[string]string) {
	t.Helper()
	cmd := s.Command
	if len(cmd) == 0 || cmd[0] != "redis-server" {
		t.Fatalf("%s: command %q, want redis-server", s.Name, cmd)
	}
	flags = map[string]string{}
	for i := 1; i < len(cmd); i++ {
		if !strings.HasPrefix(cmd[i], "--") || i+1 >= len(cmd) {
			t.Fatalf("%s: command %q: want --flag value pairs", s.Name, cmd)
		}
		flags[cmd[i]] = cmd[i+1]
		i++
	}
	return cmpOr(flags["--port"], "6379"), flags
}

func TestClusterComposeRedis(t *testing.T) {
	t.Parallel()
	p := clusterProject(t)
	var nodes []string
	for _, name := range redisNodes {
		s := service(t, p, name)
		port, flags := redisNode(t, s)
		for flag, want := range map[string]string{
			"--cluster-enabled": "yes",
			"--appendonly":      "yes",
			"--appendfsync":     "everysec",
		} {
			if flags[flag] != want {
				t.Errorf("%s: %s = %q, want %q", name, flag, flags[flag], want)
			}
		}
		data := false
		for _, v := range s.Volumes {
			data = data || v.Type == types.VolumeTypeVolume && v.Target == "/data"
		}
		if !data {
			t.Errorf("%s: /data (AOF and nodes.conf) is not on a named volume", name)
		}
		if hc := strings.Join(s.HealthCheck.Test, " "); !strings.Contains(hc, "redis-cli") || !strings.Contains(hc, "ping") || port != "6379" && !strings.Contains(hc, port) {
			t.Errorf("%s: health check %q does not ping the node's port %s", name, hc, port)
		}
		nodes = append(nodes, name+":"+port)
	}

	initSvc := service(t, p, "redis-cluster-init")
	env := environment(t, initSvc)
	if got := strings.Fields(env["REDIS_NODES"]); !slices.Equal(got, nodes) {
		t.Errorf("redis-cluster-init: REDIS_NODES %q, want the nodes %q", got, nodes)
	}
	// Three masters at least (Redis Cluster needs them), one replica each.
	replicas, err := strconv.Atoi(cmpOr(env["REDIS_REPLICAS"], "1"))
	if err != nil || replicas != 1 || len(nodes)/(replicas+1) < 3 {
		t.Errorf("redis-cluster-init: REDIS_REPLICAS %q for %d nodes, want 1 (three masters, one replica each)", env["REDIS_REPLICAS"], len(nodes))
	}
	script, err := filepath.Abs(redisInitPath)
	if err != nil {
		t.Fatal(err)
	}
	target := ""
	for _, v := range initSvc.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == script {
			target = v.Target
		}
	}
	if target == "" {
		t.Fatalf("redis-cluster-init does not mount %s", redisInitPath)
	}
	if argv := append(slices.Clone(initSvc.Entrypoint), initSvc.Command...); !slices.Equal(argv, []string{"sh", target}) {
		t.Errorf("redis-cluster-init runs %q, want [sh %s]", argv, target)
	}
	data, err := os.ReadFile(redisInitPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--cluster create", "--cluster-replicas", "--cluster-yes"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s does not run redis-cli %s", redisInitPath, want)
		}
	}
}

func TestClusterComposeChatEnvironment(t *testing.T) {
	t.Parallel()
	p := clusterProject(t)
	known := knownVariables()
	for name, s := range p.Services {
		for k := range chatEnvironment(t, s) {
			if !chatVariable(known, k) {
				t.Errorf("service %s sets %s, which the binary does not read", name, k)
			}
		}
	}

	// api and worker share one configuration; migrate has the same plus the
	// partition count, which only it reads.
	apiEnv := chatEnvironment(t, service(t, p, "api"))
	if _, ok := apiEnv[partitionsVariable]; ok {
		t.Errorf("api sets %s; only migrate reads it", partitionsVariable)
	}
	if env := chatEnvironment(t, service(t, p, "worker")); fmt.Sprint(env) != fmt.Sprint(apiEnv) {
		t.Errorf("worker's CHAT_* environment differs from api's:\n%v\n%v", env, apiEnv)
	}
	migrateEnv := chatEnvironment(t, service(t, p, "migrate"))
	checkPartitions(t, "migrate", migrateEnv[partitionsVariable])
	delete(migrateEnv, partitionsVariable)
	if fmt.Sprint(migrateEnv) != fmt.Sprint(apiEnv) {
		t.Errorf("migrate's CHAT_* environment (but %s) differs from api's:\n%v\n%v", partitionsVariable, migrateEnv, apiEnv)
	}

	cfg, err := loadConfig(apiEnv)
	if err != nil {
		t.Fatalf("config.Load rejects the cluster environment: %v", err)
	}
	if _, err := loadConfig(chatEnvironment(t, service(t, p, "migrate"))); err != nil {
		t.Errorf("config.Load rejects migrate's environment: %v", err)
	}
	// MySQL and Elasticsearch as in docker-compose.yml.
	baseEnv := chatEnvironment(t, service(t, project(t), "api"))
	for _, k := range []string{"CHAT_MYSQL_DSN", "CHAT_ELASTICSEARCH_URL", "CHAT_NAMESPACE", "CHAT_HTTP_ADDR"} {
		if apiEnv[k] != baseEnv[k] {
			t.Errorf("%s = %q, docker-compose.yml has %q", k, apiEnv[k], baseEnv[k])
		}
	}
	if dsn, err := mysql.ParseDSN(cfg.MySQLDSN); err != nil || dsn.Addr != "mysql:3306" {
		t.Errorf("CHAT_MYSQL_DSN %q does not reach the mysql service", cfg.MySQLDSN)
	}

	// RabbitMQ: every node, once, with the nodes' user.
	var hosts []string
	rabbitEnv := environment(t, service(t, p, rabbitNodes[0]))
	for i, raw := range strings.Split(cfg.AMQPURL, ",") {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("CHAT_AMQP_URL node %d: %v", i+1, err)
		}
		hosts = append(hosts, u.Host)
		pass, _ := u.User.Password()
		if u.User.Username() != rabbitEnv["RABBITMQ_DEFAULT_USER"] || pass != rabbitEnv["RABBITMQ_DEFAULT_PASS"] {
			t.Errorf("CHAT_AMQP_URL node %d: credentials are not the nodes' RABBITMQ_DEFAULT_USER and _PASS", i+1)
		}
	}
	var wantHosts []string
	for _, n := range rabbitNodes {
		wantHosts = append(wantHosts, n+":5672")
	}
	if !slices.Equal(hosts, wantHosts) {
		t.Errorf("CHAT_AMQP_URL names %q, want every node: %q", hosts, wantHosts)
	}

	// Redis: the cluster form, seeded with nodes of the cluster.
	if !rediscluster.IsClusterURL(cfg.RedisURL) {
		t.Errorf("CHAT_REDIS_URL %q is not go-redis's cluster form (addr parameters)", cfg.RedisURL)
	}
	addrs, err := rediscluster.Check(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	nodes := strings.Fields(environment(t, service(t, p, "redis-cluster-init"))["REDIS_NODES"])
	for _, a := range addrs {
		if !slices.Contains(nodes, a) {
			t.Errorf("CHAT_REDIS_URL names %s, which is not one of the nodes %q", a, nodes)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(addrs)))) < 3 {
		t.Errorf("CHAT_REDIS_URL names %q: seed at least three nodes, so that the loss of one or two does not keep a process from starting", addrs)
	}

	for _, name := range []string{"api", "worker"} {
		s := service(t, p, name)
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= cfg.ShutdownTimeout {
			t.Errorf("%s: stop_grace_period %v must exceed CHAT_SHUTDOWN_TIMEOUT %v", name, s.StopGracePeriod, cfg.ShutdownTimeout)
		}
	}
}

// TestRedisClusterInit runs deployments/cluster/redis-cluster-init.sh
// against six redis-server processes of its own: it forms the cluster, does
// nothing harmful when run again, and brings the cluster back when every
// node comes back at another address, as re-created containers do.
func TestRedisClusterInit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six redis-server processes; -short runs only the tests that need no service")
	}
	t.Parallel()
	for _, tool := range []string{"redis-server", "redis-cli", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (Debian's redis-server package brings redis-server and redis-cli)", tool, err)
		}
	}
	script, err := filepath.Abs(redisInitPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports := make([]int, 6)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	// Cluster bus ports are port+10000: keep them within range.
	for _, p := range ports {
		if p+10000 > 65535 {
			t.Skipf("free port %d leaves no room for its cluster bus port", p)
		}
	}

	start := func(ip string) {
		t.Helper()
		for _, p := range ports {
			node := filepath.Join(dir, strconv.Itoa(p))
			if err := os.MkdirAll(node, 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("redis-server", "--port", strconv.Itoa(p),
				"--bind", ip, "--bind-source-addr", ip, "--protected-mode", "no",
				"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(node, "nodes.conf"),
				"--cluster-node-timeout", "2000", "--dir", node, "--save", "", "--appendonly", "no",
				"--daemonize", "yes", "--pidfile", filepath.Join(node, "redis.pid"),
				"--logfile", filepath.Join(node, "redis.log")).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-server on %s:%d: %v: %s", ip, p, err, out)
			}
		}
	}
	stop := func(ip string) {
		for _, p := range ports {
			_ = exec.Command("redis-cli", "-h", ip, "-p", strconv.Itoa(p), "shutdown", "nosave").Run()
		}
	}
	nodes := func(ip string) string {
		var s []string
		for _, p := range ports {
			s = append(s, fmt.Sprintf("%s:%d", ip, p))
		}
		return strings.Join(s, " ")
	}
	run := func(ip string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", script)
		cmd.Env = append(os.Environ(), "REDIS_NODES="+nodes(ip), "REDIS_REPLICAS=1", "REDIS_WAIT=60")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", redisInitPath, err, out)
		}
		return string(out)
	}
	// clusterNodes is CLUSTER NODES as node id → "address flags state".
	clusterNodes := func(ip string, port int) map[string]string {
		t.Helper()
		out, err := exec.Command("redis-cli", "-h", ip, "-p", strconv.Itoa(port), "cluster", "nodes").Output()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				t.Fatalf("CLUSTER NODES line %q", line)
			}
			addr, _, _ := strings.Cut(f[1], "@")
			flags := strings.ReplaceAll(f[2], "myself,", "")
			m[f[0]] = addr + " " + flags + " " + f[7]
		}
		return m
	}
	// healthy waits until every node knows all six at ip, connected, three
	// of them masters. Gossip on a loaded machine took over 30 s once; the
	// bound only costs time when the cluster never settles.
	healthy := func(ip string) map[string]string {
		t.Helper()
		var last map[string]string
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			ok := true
			for _, p := range ports {
				m := clusterNodes(ip, p)
				masters := 0
				for _, v := range m {
					f := strings.Fields(v)
					ok = ok && strings.HasPrefix(f[0], ip+":") && f[2] == "connected"
					if strings.Contains(f[1], "master") {
						masters++
					}
				}
				ok = ok && len(m) == len(ports) && masters == 3
				last = m
			}
			if ok {
				return last
			}
		}
		t.Fatalf("the cluster did not settle at %s: %v", ip, last)
		return nil
	}

	t.Cleanup(func() { stop("127.0.0.1"); stop("127.0.0.2") })
	start("127.0.0.1")
	out := run("127.0.0.1")
	if !strings.Contains(out, "creating the cluster") {
		t.Errorf("first run did not create the cluster:\n%s", out)
	}
	formed := healthy("127.0.0.1")

	// Again: nothing is created, nothing changes.
	out = run("127.0.0.1")
	if strings.Contains(out, "creating the cluster") {
		t.Errorf("second run created the cluster again:\n%s", out)
	}
	if again := healthy("127.0.0.1"); fmt.Sprint(again) != fmt.Sprint(formed) {
		t.Errorf("second run changed the cluster:\n%v\n%v", formed, again)
	}

	// Every node comes back at another address, with its nodes.conf: the
	// cluster knows the old addresses until the script introduces the nodes
	// again.
	stop("127.0.0.1")
	start("127.0.0.2")
	out = run("127.0.0.2")
	if strings.Contains(out, "creating the cluster") {
		t.Errorf("the run after the move created the cluster again:\n%s", out)
	}
	moved := healthy("127.0.0.2")
	for id, v := range formed {
		got, ok := moved[id]
		if !ok {
			t.Errorf("node %s was lost in the move: %v", id, moved)
			continue
		}
		// Same node, same port, new address. (Roles may have changed
		// hands meanwhile; healthy checked there are three masters.)
		if strings.TrimPrefix(strings.Fields(got)[0], "127.0.0.2") != strings.TrimPrefix(strings.Fields(v)[0], "127.0.0.1") {
			t.Errorf("node %s was %s and is now %s", id, v, got)
		}
	}
}
