package deployments

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-sql-driver/mysql"
	"go.yaml.in/yaml/v3"

	"github.com/chatsys/chat/config"
)

// The tests run in this directory (deployments/); the repository root is
// the Docker build context and holds docker-compose.yml.
const (
	rootDir        = ".."
	composePath    = "../docker-compose.yml"
	dockerfilePath = "Dockerfile"
	ignorePath     = "../.dockerignore"
	nginxConfPath  = "nginx.conf"
	k8sBaseDir     = "k8s/base"
)

// knownVariables is the set of environment variables the binary reads.
func knownVariables() map[string]bool {
	known := map[string]bool{}
	for _, v := range config.Variables() {
		known[v.Name] = true
	}
	return known
}

func defaultOf(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Variables() {
		if v.Name == name {
			return v.Default
		}
	}
	t.Fatalf("config.Variables() has no %s", name)
	return ""
}

// loadConfig runs the binary's own configuration loader over env.
func loadConfig(env map[string]string) (config.Config, error) {
	return config.Load(func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

// listenPort is the port of a CHAT_HTTP_ADDR value such as ":8080".
func listenPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("CHAT_HTTP_ADDR %q: no port: %v", addr, err)
	}
	return port
}

// imageRef splits an image reference into repository and tag; digest is set
// for repo@sha256:... references.
func imageRef(ref string) (repo, tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:], digest
	}
	return ref, "", digest
}

// checkPinned fails unless ref names a tag other than latest, or a digest.
func checkPinned(t *testing.T, what, ref string) {
	t.Helper()
	repo, tag, digest := imageRef(ref)
	switch {
	case repo == "":
		t.Errorf("%s: no image", what)
	case digest != "":
	case tag == "":
		t.Errorf("%s: image %q has no tag (it would float on latest)", what, ref)
	case tag == "latest":
		t.Errorf("%s: image %q is not pinned", what, ref)
	}
}

// ---------------------------------------------------------------------------
// docker-compose.yml

// loadCompose loads a compose file as docker compose does, from the
// repository root, with the services of the profiles named enabled ("*":
// all of them).
func loadCompose(path string, profiles ...string) (*types.Project, error) {
	root, err := filepath.Abs(rootDir)
	if err != nil {
		return nil, err
	}
	file, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		// No host environment: the file must not depend on the shell that
		// runs docker compose.
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SkipResolveEnvironment = true
		o.Profiles = profiles
	})
}

var loadProject = sync.OnceValues(func() (*types.Project, error) { return loadCompose(composePath) })

func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadProject()
	if err != nil {
		t.Fatalf("load %s: %v", composePath, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("%s has no service %q", filepath.Base(p.ComposeFiles[0]), name)
	}
	return s
}

// environment flattens a service's environment; a variable without a value
// is an error here, since the stack must not depend on the host's.
func environment(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("service %s: %s has no value", s.Name, k)
			continue
		}
		env[k] = *v
	}
	return env
}

func chatEnvironment(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range environment(t, s) {
		if strings.HasPrefix(k, "CHAT_") {
			env[k] = v
		}
	}
	return env
}

var (
	backingServices = []string{"mysql", "redis", "rabbitmq", "elasticsearch"}
	chatServices    = []string{"migrate", "api", "worker"}
)

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := project(t)
	if p.Name != "chat" {
		t.Errorf("project name = %q, want chat (fixed, so volumes do not depend on the checkout's folder name)", p.Name)
	}
	root, err := filepath.Abs(rootDir)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		image     string // repository, for services run from a public image
		command   []string
		stateful  bool
		chatImage bool
	}{
		{name: "mysql", image: "mysql", stateful: true},
		{name: "redis", image: "redis", stateful: true},
		{name: "rabbitmq", image: "rabbitmq", stateful: true},
		{name: "elasticsearch", image: "docker.elastic.co/elasticsearch/elasticsearch", stateful: true},
		{name: "migrate", command: []string{"migrate"}, chatImage: true},
		{name: "api", command: []string{"serve"}, chatImage: true},
		{name: "worker", command: []string{"work"}, chatImage: true},
		{name: "proxy", image: "nginx"},
	}
	want := map[string]bool{}
	for _, tt := range tests {
		want[tt.name] = true
	}
	for name := range p.Services {
		if !want[name] {
			t.Errorf("unexpected service %q: add it to this test with what it must guarantee", name)
		}
	}

	// RabbitMQ stores its data under the node name, rabbit@<hostname>: a
	// random container hostname would strand the durable queues in the
	// volume whenever the container is re-created.
	if s := service(t, p, "rabbitmq"); s.Hostname == "" {
		t.Errorf("rabbitmq has no fixed hostname")
	}

	var chatImages []string
	for _, tt := range tests {
		s := service(t, p, tt.name)
		if tt.image != "" {
			repo, _, _ := imageRef(s.Image)
			if repo != tt.image {
				t.Errorf("%s: image %q, want one of %s", tt.name, s.Image, tt.image)
			}
			if s.Build != nil {
				t.Errorf("%s: runs a public image, should not build", tt.name)
			}
		}
		if s.Image != "" {
			checkPinned(t, tt.name, s.Image)
		}
		if tt.command != nil && !slices.Equal(s.Command, tt.command) {
			t.Errorf("%s: command %q, want %q", tt.name, s.Command, tt.command)
		}
		if tt.stateful {
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
				t.Errorf("%s: no health check", tt.name)
			}
			hasVolume := false
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume {
					if _, ok := p.Volumes[v.Source]; !ok {
						t.Errorf("%s: volume %q is not declared", tt.name, v.Source)
					}
					hasVolume = true
				}
			}
			if !hasVolume {
				t.Errorf("%s: data not on a named volume", tt.name)
			}
		}
		if tt.chatImage {
			chatImages = append(chatImages, s.Image)
			if s.Build == nil {
				t.Errorf("%s: not built from deployments/Dockerfile", tt.name)
				continue
			}
			if s.Build.Context != root {
				t.Errorf("%s: build context %q, want the repository root %q", tt.name, s.Build.Context, root)
			}
			if df := filepath.ToSlash(s.Build.Dockerfile); df != "deployments/Dockerfile" && df != filepath.ToSlash(filepath.Join(root, "deployments/Dockerfile")) {
				t.Errorf("%s: dockerfile %q, want deployments/Dockerfile", tt.name, s.Build.Dockerfile)
			}
		}
	}
	slices.Sort(chatImages)
	if chatImages = slices.Compact(chatImages); len(chatImages) != 1 || chatImages[0] == "" {
		t.Errorf("migrate, api and worker build images %q; name one image for all three", chatImages)
	}
}

func TestComposeDependencies(t *testing.T) {
	t.Parallel()
	p := project(t)

	want := map[string]map[string]string{
		"migrate": {"mysql": types.ServiceConditionHealthy},
		"api":     {"migrate": types.ServiceConditionCompletedSuccessfully},
		"worker":  {"migrate": types.ServiceConditionCompletedSuccessfully},
	}
	for _, b := range backingServices {
		want["api"][b] = types.ServiceConditionHealthy
		want["worker"][b] = types.ServiceConditionHealthy
	}
	for name, deps := range want {
		s := service(t, p, name)
		for dep, cond := range deps {
			got, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("%s does not depend on %s", name, dep)
				continue
			}
			if got.Condition != cond {
				t.Errorf("%s depends on %s with condition %q, want %q", name, dep, got.Condition, cond)
			}
		}
	}

	checkDependencyConditions(t, p)
}

// checkDependencyConditions fails for a service that waits for a condition
// its dependency cannot meet: health without a health check, completion
// from a service that restarts.
func checkDependencyConditions(t *testing.T, p *types.Project) {
	t.Helper()
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			// A service that always starts cannot wait for one that starts
			// only with a profile.
			for _, profile := range target.Profiles {
				if !slices.Contains(s.Profiles, profile) {
					t.Errorf("%s depends on %s, which starts only with profile %s", name, dep, profile)
				}
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != "" && target.Restart != types.RestartPolicyNo {
					t.Errorf("%s waits for %s to complete, but %s restarts (%q)", name, dep, dep, target.Restart)
				}
			}
		}
	}
}

func TestComposeProxy(t *testing.T) {
	t.Parallel()
	p := project(t)
	proxy := service(t, p, "proxy")
	api := service(t, p, "api")
	apiPort := listenPort(t, chatEnvironment(t, api)["CHAT_HTTP_ADDR"])

	var target uint32
	for _, port := range proxy.Ports {
		if port.Published == "8080" {
			target = port.Target
		}
	}
	if target == 0 {
		t.Fatalf("proxy does not publish 8080: %+v", proxy.Ports)
	}

	// The API must scale: nothing that pins it to one container.
	if len(api.Ports) > 0 {
		t.Errorf("api publishes %+v; only the proxy may publish, or --scale api=3 fails", api.Ports)
	}
	if api.ContainerName != "" {
		t.Errorf("api has container_name %q; it cannot be scaled", api.ContainerName)
	}
	for _, name := range []string{"worker", "migrate"} {
		if s := service(t, p, name); len(s.Ports) > 0 || s.ContainerName != "" {
			t.Errorf("%s publishes ports or has a container_name", name)
		}
	}

	// The mounted configuration is deployments/nginx.conf, in conf.d.
	conf, err := filepath.Abs(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, v := range proxy.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == conf {
			mounted = true
			if !strings.HasPrefix(v.Target, "/etc/nginx/conf.d/") || !strings.HasSuffix(v.Target, ".conf") {
				t.Errorf("nginx.conf mounted at %s, not a conf.d/*.conf file nginx includes", v.Target)
			}
		}
	}
	if !mounted {
		t.Errorf("proxy does not mount %s: %+v", conf, proxy.Volumes)
	}

	data, err := os.ReadFile(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	text := stripComments(string(data), "#")
	if m := regexp.MustCompile(`(?m)^\s*listen\s+(\d+)\s*;`).FindStringSubmatch(text); m == nil || m[1] != fmt.Sprint(target) {
		t.Errorf("nginx listens on %v, the proxy publishes to container port %d", m, target)
	}
	if !regexp.MustCompile(`(?m)^\s*resolver\s+127\.0\.0\.11\b[^;]*\bvalid=\d+s`).MatchString(text) {
		t.Errorf("nginx.conf: no `resolver 127.0.0.11 valid=...` (Docker's DNS, re-resolved so new replicas are seen)")
	}
	// proxy_pass through a variable, so nginx resolves at request time.
	set := regexp.MustCompile(`(?m)^\s*set\s+\$(\w+)\s+"?http://([^/";\s]+)"?\s*;`).FindStringSubmatch(text)
	if set == nil {
		t.Fatalf("nginx.conf: no `set $upstream http://api:PORT;`")
	}
	if want := "api:" + apiPort; set[2] != want {
		t.Errorf("nginx.conf proxies to %s, want %s (the api service and its CHAT_HTTP_ADDR port)", set[2], want)
	}
	if !regexp.MustCompile(`(?m)^\s*proxy_pass\s+\$` + set[1] + `\s*;`).MatchString(text) {
		t.Errorf("nginx.conf: proxy_pass does not use $%s", set[1])
	}
}

func TestComposeRedisAppendOnly(t *testing.T) {
	t.Parallel()
	redis := service(t, project(t), "redis")
	args := map[string]string{}
	for i := 0; i+1 < len(redis.Command); i++ {
		if strings.HasPrefix(redis.Command[i], "--") {
			args[redis.Command[i]] = redis.Command[i+1]
		}
	}
	for flag, want := range map[string]string{"--appendonly": "yes", "--appendfsync": "everysec"} {
		if args[flag] != want {
			t.Errorf("redis command %q: %s = %q, want %q", redis.Command, flag, args[flag], want)
		}
	}
}

func TestComposeElasticsearchSingleNode(t *testing.T) {
	t.Parallel()
	es := environment(t, service(t, project(t), "elasticsearch"))
	for k, want := range map[string]string{
		"discovery.type":         "single-node",
		"xpack.security.enabled": "false",
	} {
		if es[k] != want {
			t.Errorf("elasticsearch %s = %q, want %q", k, es[k], want)
		}
	}
	if !strings.Contains(es["ES_JAVA_OPTS"], "-Xmx") {
		t.Errorf("elasticsearch ES_JAVA_OPTS = %q: bound the heap", es["ES_JAVA_OPTS"])
	}
}

func TestComposeChatEnvironment(t *testing.T) {
	t.Parallel()
	p := project(t)
	known := knownVariables()

	// Every CHAT_* variable anywhere in the file is one the binary reads.
	for name, s := range p.Services {
		for k := range chatEnvironment(t, s) {
			if !known[k] {
				t.Errorf("service %s sets %s, which the binary does not read", name, k)
			}
		}
	}

	// The chat processes share one configuration (one namespace above all).
	apiEnv := chatEnvironment(t, service(t, p, "api"))
	for _, name := range chatServices {
		env := chatEnvironment(t, service(t, p, name))
		if fmt.Sprint(env) != fmt.Sprint(apiEnv) {
			t.Errorf("%s's CHAT_* environment differs from api's:\n%v\n%v", name, env, apiEnv)
		}
	}
	for _, k := range []string{"CHAT_MYSQL_DSN", "CHAT_REDIS_URL", "CHAT_AMQP_URL", "CHAT_ELASTICSEARCH_URL", "CHAT_HTTP_ADDR"} {
		if apiEnv[k] == "" {
			t.Errorf("api does not set %s (the default points at localhost)", k)
		}
	}

	cfg, err := loadConfig(apiEnv)
	if err != nil {
		t.Fatalf("config.Load rejects the compose environment: %v", err)
	}

	// Each endpoint is the compose service, with matching credentials.
	dsn, err := mysql.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	mysqlEnv := environment(t, service(t, p, "mysql"))
	if dsn.Addr != "mysql:3306" {
		t.Errorf("CHAT_MYSQL_DSN address %s, want mysql:3306", dsn.Addr)
	}
	switch {
	case dsn.User != "root":
		// Another user is fine if the image creates it.
		if mysqlEnv["MYSQL_USER"] != dsn.User || mysqlEnv["MYSQL_PASSWORD"] != dsn.Passwd {
			t.Errorf("CHAT_MYSQL_DSN user %s is not the one the mysql service creates", dsn.User)
		}
	case dsn.Passwd == "":
		if mysqlEnv["MYSQL_ALLOW_EMPTY_PASSWORD"] == "" {
			t.Errorf("CHAT_MYSQL_DSN has no password, but mysql does not allow an empty root password")
		}
	case dsn.Passwd != mysqlEnv["MYSQL_ROOT_PASSWORD"]:
		t.Errorf("CHAT_MYSQL_DSN password %q is not MYSQL_ROOT_PASSWORD %q", dsn.Passwd, mysqlEnv["MYSQL_ROOT_PASSWORD"])
	}
	if !dsn.ParseTime {
		t.Errorf("CHAT_MYSQL_DSN lacks parseTime=true")
	}

	checkURL := func(name, raw, hostPort string) *url.URL {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return &url.URL{}
		}
		if u.Host != hostPort {
			t.Errorf("%s host %s, want %s", name, u.Host, hostPort)
		}
		return u
	}
	checkURL("CHAT_REDIS_URL", cfg.RedisURL, "redis:6379")
	checkURL("CHAT_ELASTICSEARCH_URL", cfg.ElasticsearchURL, "elasticsearch:9200")
	amqp := checkURL("CHAT_AMQP_URL", cfg.AMQPURL, "rabbitmq:5672")
	rabbitEnv := environment(t, service(t, p, "rabbitmq"))
	user, pass := cmpOr(rabbitEnv["RABBITMQ_DEFAULT_USER"], "guest"), cmpOr(rabbitEnv["RABBITMQ_DEFAULT_PASS"], "guest")
	gotPass, _ := amqp.User.Password()
	if amqp.User.Username() != user || gotPass != pass {
		t.Errorf("CHAT_AMQP_URL credentials %s:%s, rabbitmq has %s:%s", amqp.User.Username(), gotPass, user, pass)
	}
	if user == "guest" {
		t.Errorf("RabbitMQ's guest user may only connect from localhost; set RABBITMQ_DEFAULT_USER")
	}

	// Docker must wait for the graceful drain before it kills the process.
	for _, name := range []string{"api", "worker"} {
		s := service(t, p, name)
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= cfg.ShutdownTimeout {
			t.Errorf("%s: stop_grace_period %v must exceed CHAT_SHUTDOWN_TIMEOUT %v", name, s.StopGracePeriod, cfg.ShutdownTimeout)
		}
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ---------------------------------------------------------------------------
// Dockerfile

type instruction struct {
	stage int    // index of the FROM it belongs to
	cmd   string // upper case
	args  string
}

type stage struct {
	image, name string
}

// parseDockerfile reads instructions, joining continuation lines.
func parseDockerfile(t *testing.T) ([]stage, []instruction) {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages  []stage
		instrs  []instruction
		pending string
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && pending == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		if line == "" {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			var s stage
			for _, w := range f {
				if !strings.HasPrefix(w, "--") {
					s.image = w
					break
				}
			}
			if i := slices.IndexFunc(f, func(w string) bool { return strings.EqualFold(w, "AS") }); i >= 0 && i+1 < len(f) {
				s.name = f[i+1]
			}
			stages = append(stages, s)
		}
		if len(stages) == 0 && cmd != "ARG" {
			t.Fatalf("Dockerfile: %s before FROM", cmd)
		}
		instrs = append(instrs, instruction{stage: len(stages) - 1, cmd: cmd, args: args})
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	return stages, instrs
}

// shellWords splits a shell command line into words, honouring quotes; it
// stops at the first && ; or |.
func shellWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		in    rune
		have  bool
	)
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case in != 0 && c == in:
			in = 0
		case in != 0:
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			in, have = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			have = true
		case c == ' ' || c == '\t':
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case c == ';' || c == '|' || c == '&':
			if have {
				words = append(words, cur.String())
			}
			return words
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	return words
}

// goBuild is the Dockerfile's go build command.
type goBuild struct {
	env    []string // VAR=value given on the RUN line or by ENV in the stage
	flags  []string // everything between "build" and the package, -o excluded
	output string
	pkg    string
	stage  int
}

func dockerGoBuild(t *testing.T, instrs []instruction) goBuild {
	t.Helper()
	var (
		b     goBuild
		found bool
		env   = map[int][]string{}
	)
	for _, in := range instrs {
		switch in.cmd {
		case "ENV":
			for _, w := range shellWords(in.args) {
				if strings.Contains(w, "=") {
					env[in.stage] = append(env[in.stage], w)
				}
			}
		case "RUN":
			words := shellWords(in.args)
			for len(words) > 0 && strings.HasPrefix(words[0], "--") {
				words = words[1:] // --mount=... and the like
			}
			i := slices.Index(words, "go")
			if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
				continue
			}
			if found {
				t.Fatalf("Dockerfile runs go build twice")
			}
			found = true
			b.stage = in.stage
			b.env = append(slices.Clone(env[in.stage]), words[:i]...)
			rest := words[i+2:]
			for j := 0; j < len(rest); j++ {
				switch w := rest[j]; {
				case w == "-o" && j+1 < len(rest):
					b.output = rest[j+1]
					j++
				case strings.HasPrefix(w, "-o="):
					b.output = strings.TrimPrefix(w, "-o=")
				case strings.HasPrefix(w, "-"):
					b.flags = append(b.flags, w)
				default:
					if b.pkg != "" {
						t.Fatalf("Dockerfile go build names two packages: %s and %s", b.pkg, w)
					}
					b.pkg = w
				}
			}
		}
	}
	if !found {
		t.Fatalf("Dockerfile has no go build")
	}
	for _, e := range b.env {
		if k, _, _ := strings.Cut(e, "="); !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			t.Fatalf("Dockerfile go build: %q before go is not a variable assignment", e)
		}
	}
	return b
}

func envValue(env []string, k string) (string, bool) {
	v := ""
	ok := false
	for _, e := range env {
		if name, val, _ := strings.Cut(e, "="); name == k {
			v, ok = val, true
		}
	}
	return v, ok
}

func TestDockerfileStages(t *testing.T) {
	t.Parallel()
	stages, instrs := parseDockerfile(t)
	names := map[string]bool{}
	for _, s := range stages {
		if !names[s.image] && s.image != "scratch" {
			checkPinned(t, "FROM "+s.image, s.image)
		}
		if s.name != "" {
			names[s.name] = true
		}
	}

	// The build stage's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(rootDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	b := dockerGoBuild(t, instrs)
	build := stages[b.stage]
	repo, tag, _ := imageRef(build.image)
	if repo != "golang" || !regexp.MustCompile(`^`+string(m[1])+`\.`+string(m[2])+`(\.\d+)?(-|$)`).MatchString(tag) {
		t.Errorf("go build runs in %s, want golang:%s.%s (go.mod's go version)", build.image, m[1], m[2])
	}

	// Modules are downloaded in their own layer, before the sources arrive.
	var order []string
	for _, in := range instrs {
		if in.stage != b.stage {
			continue
		}
		switch {
		case in.cmd == "COPY" && slices.Equal(strings.Fields(in.args), []string{"go.mod", "go.sum", "./"}):
			order = append(order, "mod")
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
			order = append(order, "download")
		case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
			order = append(order, "sources")
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			order = append(order, "build")
		}
	}
	if want := []string{"mod", "download", "sources", "build"}; !slices.Equal(order, want) {
		t.Errorf("build stage order %q, want %q (COPY go.mod go.sum ./, RUN go mod download, COPY . ., RUN go build)", order, want)
	}

	// The runtime stage: static distroless (or scratch), non-root, the
	// binary as entrypoint.
	last := len(stages) - 1
	runtime := stages[last]
	runtimeRepo, runtimeTag, _ := imageRef(runtime.image)
	if runtime.image != "scratch" && !strings.HasSuffix(runtimeRepo, "/distroless/static-debian12") && !strings.HasSuffix(runtimeRepo, "/distroless/static") {
		t.Errorf("runtime image %s, want distroless/static or scratch", runtime.image)
	}
	var user, entrypoint, cmd, binary string
	var exposed []string
	for _, in := range instrs {
		if in.stage != last {
			continue
		}
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[1] == b.output {
				binary = f[2]
			}
		}
	}
	if binary == "" {
		t.Errorf("runtime stage does not COPY --from the build stage's %s", b.output)
	}
	uid, _, _ := strings.Cut(user, ":")
	switch {
	case uid == "" && strings.Contains(runtimeTag, "nonroot"):
	case uid == "" || uid == "root" || uid == "0":
		t.Errorf("runtime USER %q: run as non-root", user)
	}
	var ep, argv []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) != 1 || ep[0] != binary {
		t.Errorf("ENTRYPOINT %s, want the exec form [%q]", entrypoint, binary)
	}
	if err := json.Unmarshal([]byte(cmd), &argv); err != nil || !slices.Equal(argv, []string{"all"}) {
		t.Errorf(`CMD %s, want ["all"]`, cmd)
	}
	if port := listenPort(t, defaultOf(t, "CHAT_HTTP_ADDR")); !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
		t.Errorf("EXPOSE %q does not include CHAT_HTTP_ADDR's default port %s", exposed, port)
	}
}

// TestDockerfileBuildsChat builds what the Dockerfile builds, with the same
// environment and flags, and runs the result.
func TestDockerfileBuildsChat(t *testing.T) {
	t.Parallel()
	_, instrs := parseDockerfile(t)
	b := dockerGoBuild(t, instrs)
	if b.pkg != "./cmd/chat" {
		t.Errorf("Dockerfile builds %q, want ./cmd/chat", b.pkg)
	}
	if v, _ := envValue(b.env, "CGO_ENABLED"); v != "0" {
		t.Errorf("Dockerfile go build: CGO_ENABLED=%q, want 0 (a static binary for distroless/static)", v)
	}
	if !slices.Contains(b.flags, "-trimpath") {
		t.Errorf("Dockerfile go build flags %q lack -trimpath", b.flags)
	}
	if b.output == "" {
		t.Errorf("Dockerfile go build has no -o")
	}
	if t.Failed() {
		return // not the build the image needs; do not spend a build on it
	}

	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "chat")
	args := append(append([]string{"build"}, b.flags...), "-o", bin, b.pkg)
	build := exec.Command(gobin, args...)
	build.Dir = rootDir
	build.Env = append(os.Environ(), b.env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s go %s: %v\n%s", strings.Join(b.env, " "), strings.Join(args, " "), err, out)
	}

	out, err := exec.Command(bin, "env").Output()
	if err != nil {
		t.Fatalf("chat env: %v", err)
	}
	for _, v := range config.Variables() {
		if !regexp.MustCompile(`(?m)^` + v.Name + `\s`).Match(out) {
			t.Errorf("chat env does not list %s:\n%s", v.Name, out)
		}
	}
}

// ---------------------------------------------------------------------------
// .dockerignore

// ignoreRule is one .dockerignore line as a regular expression.
type ignoreRule struct {
	re      *regexp.Regexp
	exclude bool // false for !exceptions
}

func parseDockerignore(t *testing.T) []ignoreRule {
	t.Helper()
	data, err := os.ReadFile(ignorePath)
	if err != nil {
		t.Fatal(err)
	}
	var rules []ignoreRule
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{exclude: true}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			line, r.exclude = strings.TrimSpace(rest), false
		}
		line = strings.TrimPrefix(path.Clean(strings.TrimPrefix(line, "/")), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		r.re = regexp.MustCompile(re.String())
		rules = append(rules, r)
	}
	return rules
}

// ignored reports whether the build context leaves out rel (slash-separated,
// relative to the root): a path is out when it or a parent folder matches,
// the last matching rule deciding.
func ignored(rules []ignoreRule, rel string) bool {
	out := false
	for _, r := range rules {
		for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			if r.re.MatchString(p) {
				out = r.exclude
				break
			}
		}
	}
	return out
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	rules := parseDockerignore(t)
	for _, p := range []string{".git", ".git/config", "bin/chat", "config/config.test", "tools/zincsearch/go.mod"} {
		if !ignored(rules, p) {
			t.Errorf(".dockerignore keeps %s in the build context", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum"} {
		if ignored(rules, p) {
			t.Errorf(".dockerignore leaves out %s", p)
		}
	}

	// Every file ./cmd/chat compiles or embeds reaches the builder.
	root, err := filepath.Abs(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	list := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles", "./cmd/chat")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	files := 0
	for {
		var pkg struct {
			Dir        string
			Module     *struct{ Main bool }
			GoFiles    []string
			EmbedFiles []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			rel, err := filepath.Rel(root, filepath.Join(pkg.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			files++
			if rel = filepath.ToSlash(rel); ignored(rules, rel) {
				t.Errorf(".dockerignore leaves out %s, which ./cmd/chat needs", rel)
			}
		}
	}
	if files == 0 {
		t.Fatalf("go list found no files of ./cmd/chat")
	}
}

// ---------------------------------------------------------------------------
// Kubernetes

type k8sMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type k8sObject struct {
	File       string
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	node       *yaml.Node
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *k8sSecurityContext `yaml:"securityContext"`
}

type k8sSecurityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
}

type k8sPodTemplate struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     struct {
		TerminationGracePeriodSeconds *int                `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               *k8sSecurityContext `yaml:"securityContext"`
		InitContainers                []k8sContainer      `yaml:"initContainers"`
		Containers                    []k8sContainer      `yaml:"containers"`
	} `yaml:"spec"`
}

// k8sWorkload is a Deployment or a Job.
type k8sWorkload struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template k8sPodTemplate `yaml:"template"`
	} `yaml:"spec"`
}

var loadK8s = sync.OnceValues(func() ([]k8sObject, error) {
	entries, err := os.ReadDir(k8sBaseDir)
	if err != nil {
		return nil, err
	}
	var objs []k8sObject
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(k8sBaseDir, e.Name()))
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
			if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
				continue // an empty document
			}
			obj := k8sObject{File: e.Name(), node: &doc}
			if err := doc.Decode(&obj); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
			objs = append(objs, obj)
		}
	}
	return objs, nil
})

func k8sObjects(t *testing.T) []k8sObject {
	t.Helper()
	objs, err := loadK8s()
	if err != nil {
		t.Fatalf("k8s: %v", err)
	}
	return objs
}

// k8sGet decodes the object of that kind and name into v.
func k8sGet(t *testing.T, kind, name string, v any) k8sObject {
	t.Helper()
	for _, o := range k8sObjects(t) {
		if o.Kind == kind && o.Metadata.Name == name {
			if err := o.node.Decode(v); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return o
		}
	}
	t.Fatalf("%s: no %s %s", k8sBaseDir, kind, name)
	return k8sObject{}
}

func k8sKind(t *testing.T, kind string) []k8sObject {
	t.Helper()
	var out []k8sObject
	for _, o := range k8sObjects(t) {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// k8sPodTemplates returns the pod templates of every Deployment and Job.
func k8sPodTemplates(t *testing.T) map[string]k8sPodTemplate {
	t.Helper()
	out := map[string]k8sPodTemplate{}
	for _, o := range k8sObjects(t) {
		if o.Kind != "Deployment" && o.Kind != "Job" && o.Kind != "StatefulSet" && o.Kind != "DaemonSet" && o.Kind != "CronJob" {
			continue
		}
		if o.Kind == "CronJob" {
			t.Fatalf("%s: CronJob templates are not checked yet", o.File)
		}
		var w k8sWorkload
		if err := o.node.Decode(&w); err != nil {
			t.Fatalf("%s: %v", o.File, err)
		}
		out[o.Kind+"/"+o.Metadata.Name] = w.Spec.Template
	}
	return out
}

type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	var k kustomization
	obj := k8sGet(t, "Kustomization", "", &k)
	if obj.File != "kustomization.yaml" {
		t.Errorf("Kustomization is in %s, want kustomization.yaml", obj.File)
	}
	if k.Namespace != "" {
		t.Errorf("the base sets namespace %q; leave it to overlays", k.Namespace)
	}
	entries, err := os.ReadDir(k8sBaseDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "kustomization.yaml" {
			files = append(files, e.Name())
		}
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization resources %q, folder holds %q", listed, files)
	}
	if len(slices.Compact(slices.Clone(listed))) != len(listed) {
		t.Errorf("kustomization lists a resource twice: %q", listed)
	}
}

func TestK8sObjects(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, o := range k8sObjects(t) {
		if o.Kind == "Kustomization" {
			continue
		}
		id := o.Kind + "/" + o.Metadata.Name
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: object without apiVersion, kind or metadata.name: %q", o.File, id)
		}
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: %s sets namespace %q; the base is namespace-less", o.File, id, o.Metadata.Namespace)
		}
		if f, dup := seen[id]; dup {
			t.Errorf("%s is defined in %s and %s", id, f, o.File)
		}
		seen[id] = o.File
	}
	for _, id := range []string{
		"ConfigMap/chat-config", "Secret/chat-secrets", "Job/chat-migrate",
		"Deployment/chat-api", "Service/chat-api", "HorizontalPodAutoscaler/chat-api",
		"Deployment/chat-worker",
	} {
		if _, ok := seen[id]; !ok {
			t.Errorf("%s: no %s", k8sBaseDir, id)
		}
	}
}

func TestK8sImages(t *testing.T) {
	t.Parallel()
	images := map[string][]string{}
	for id, tpl := range k8sPodTemplates(t) {
		for _, c := range append(tpl.Spec.InitContainers, tpl.Spec.Containers...) {
			images[c.Image] = append(images[c.Image], id+"/"+c.Name)
		}
	}
	if len(images) != 1 {
		t.Fatalf("containers run %d different images, want one: %v", len(images), images)
	}
	image := slices.Collect(maps.Keys(images))[0]
	checkPinned(t, "k8s image", image)

	// The kustomization's images entry (what overlays change) names it.
	var k kustomization
	k8sGet(t, "Kustomization", "", &k)
	repo, tag, _ := imageRef(image)
	found := false
	for _, img := range k.Images {
		if img.Name != repo {
			continue
		}
		found = true
		if img.NewName != "" && img.NewName != repo || img.NewTag != "" && img.NewTag != tag || img.Digest != "" {
			t.Errorf("kustomization images rewrites %s to %s:%s, manifests say %s", repo, cmpOr(img.NewName, repo), img.NewTag, image)
		}
	}
	if !found {
		t.Errorf("kustomization has no images entry for %s", repo)
	}
}

// k8sEnv merges the ConfigMap and Secret values every chat container gets.
func k8sEnv(t *testing.T) (configMap, secret map[string]string) {
	t.Helper()
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	k8sGet(t, "ConfigMap", "chat-config", &cm)
	var s struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	k8sGet(t, "Secret", "chat-secrets", &s)
	if len(s.Data) > 0 {
		t.Errorf("Secret chat-secrets: use stringData placeholders, not data")
	}
	return cm.Data, s.StringData
}

func TestK8sConfiguration(t *testing.T) {
	t.Parallel()
	known := knownVariables()
	cm, secret := k8sEnv(t)

	env := map[string]string{}
	for what, m := range map[string]map[string]string{"ConfigMap chat-config": cm, "Secret chat-secrets": secret} {
		for k, v := range m {
			if !known[k] {
				t.Errorf("%s: %s is not a variable the binary reads", what, k)
			}
			if _, dup := env[k]; dup {
				t.Errorf("%s is in both the ConfigMap and the Secret", k)
			}
			env[k] = v
		}
	}
	for _, k := range []string{"CHAT_MYSQL_DSN", "CHAT_AMQP_URL", "CHAT_REDIS_URL"} {
		if _, ok := secret[k]; !ok {
			t.Errorf("Secret chat-secrets lacks %s", k)
		}
	}
	for id, tpl := range k8sPodTemplates(t) {
		for _, c := range tpl.Spec.Containers {
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "CHAT_") && !known[e.Name] {
					t.Errorf("%s/%s: env %s is not a variable the binary reads", id, c.Name, e.Name)
				}
			}
		}
	}
	if _, err := loadConfig(env); err != nil {
		t.Errorf("config.Load rejects the ConfigMap and Secret: %v", err)
	}
}

func TestK8sWorkloads(t *testing.T) {
	t.Parallel()
	cm, secret := k8sEnv(t)
	env := map[string]string{}
	for k, v := range cm {
		env[k] = v
	}
	for k, v := range secret {
		env[k] = v
	}
	cfg, err := loadConfig(env)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	httpPort := listenPort(t, cfg.HTTPAddr)

	tests := []struct {
		kind, name  string
		subcommand  string
		probes      bool
		minReplicas int
	}{
		{kind: "Deployment", name: "chat-api", subcommand: "serve", probes: true, minReplicas: 1},
		// Two replicas share the partitions; either carries them alone.
		{kind: "Deployment", name: "chat-worker", subcommand: "work", probes: true, minReplicas: 2},
		{kind: "Job", name: "chat-migrate", subcommand: "migrate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var w k8sWorkload
			k8sGet(t, tt.kind, tt.name, &w)
			spec := w.Spec.Template.Spec
			if tt.kind == "Deployment" {
				if len(w.Spec.Selector.MatchLabels) == 0 {
					t.Errorf("no selector")
				}
				for k, v := range w.Spec.Selector.MatchLabels {
					if w.Spec.Template.Metadata.Labels[k] != v {
						t.Errorf("selector %s=%s does not match the pod labels %v", k, v, w.Spec.Template.Metadata.Labels)
					}
				}
				replicas := 1
				if w.Spec.Replicas != nil {
					replicas = *w.Spec.Replicas
				}
				if replicas < tt.minReplicas {
					t.Errorf("replicas %d, want at least %d", replicas, tt.minReplicas)
				}
				grace := 30 // Kubernetes' default
				if spec.TerminationGracePeriodSeconds != nil {
					grace = *spec.TerminationGracePeriodSeconds
				}
				if time.Duration(grace)*time.Second <= cfg.ShutdownTimeout {
					t.Errorf("terminationGracePeriodSeconds %d must exceed CHAT_SHUTDOWN_TIMEOUT %v", grace, cfg.ShutdownTimeout)
				}
			}
			if len(spec.Containers) != 1 {
				t.Fatalf("%d containers, want the chat container alone", len(spec.Containers))
			}
			c := spec.Containers[0]
			argv := append(slices.Clone(c.Command), c.Args...)
			if len(argv) == 0 || argv[len(argv)-1] != tt.subcommand {
				t.Errorf("container runs %q, want the subcommand %s", argv, tt.subcommand)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" {
					t.Errorf("no %s request", r)
				}
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("no memory limit")
			}

			nonRoot := func(sc *k8sSecurityContext) bool {
				return sc != nil && (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser != 0)
			}
			if !nonRoot(spec.SecurityContext) && !nonRoot(c.SecurityContext) {
				t.Errorf("not runAsNonRoot")
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("root filesystem is not read-only")
			}
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("allowPrivilegeEscalation is not false")
			}

			hasConfig, hasSecret := false, false
			for _, ef := range c.EnvFrom {
				hasConfig = hasConfig || ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == "chat-config"
				hasSecret = hasSecret || ef.SecretRef != nil && ef.SecretRef.Name == "chat-secrets"
			}
			if !hasConfig || !hasSecret {
				t.Errorf("envFrom does not take both chat-config and chat-secrets")
			}

			if !tt.probes {
				return
			}
			// Probes hit the port the process listens on.
			if len(c.Ports) != 1 || fmt.Sprint(c.Ports[0].ContainerPort) != httpPort {
				t.Errorf("container ports %+v, want one: CHAT_HTTP_ADDR's %s", c.Ports, httpPort)
			}
			for _, p := range []struct {
				name  string
				probe *k8sProbe
				path  string
			}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("no %s httpGet", p.name)
					continue
				}
				if p.probe.HTTPGet.Path != p.path {
					t.Errorf("%s path %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
				}
				if port := p.probe.HTTPGet.Port; port != httpPort && (len(c.Ports) == 0 || port != c.Ports[0].Name) {
					t.Errorf("%s port %q is not the container port %s", p.name, port, httpPort)
				}
			}
		})
	}
}

func TestK8sServiceAndAutoscaler(t *testing.T) {
	t.Parallel()
	var api k8sWorkload
	k8sGet(t, "Deployment", "chat-api", &api)
	podLabels := api.Spec.Template.Metadata.Labels
	var ports []string
	for _, c := range api.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, p.Name, fmt.Sprint(p.ContainerPort))
		}
	}

	var svc struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	k8sGet(t, "Service", "chat-api", &svc)
	if len(svc.Spec.Selector) == 0 {
		t.Errorf("Service chat-api selects nothing")
	}
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service chat-api selector %s=%s does not match chat-api pods %v", k, v, podLabels)
		}
	}
	if len(svc.Spec.Ports) == 0 {
		t.Errorf("Service chat-api has no ports")
	}
	for _, p := range svc.Spec.Ports {
		if target := cmpOr(p.TargetPort, fmt.Sprint(p.Port)); !slices.Contains(ports, target) {
			t.Errorf("Service chat-api targets port %s; the pods have %q", target, ports)
		}
	}

	var hpas []k8sObject
	for _, o := range k8sKind(t, "HorizontalPodAutoscaler") {
		hpas = append(hpas, o)
		if o.APIVersion != "autoscaling/v2" {
			t.Errorf("HorizontalPodAutoscaler %s: apiVersion %s, want autoscaling/v2", o.Metadata.Name, o.APIVersion)
		}
	}
	if len(hpas) != 1 {
		t.Fatalf("%d autoscalers, want one for chat-api (the workers have a single appender)", len(hpas))
	}
	var hpa struct {
		Spec struct {
			ScaleTargetRef struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Name       string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas *int `yaml:"minReplicas"`
			MaxReplicas int  `yaml:"maxReplicas"`
			Metrics     []struct {
				Type     string `yaml:"type"`
				Resource struct {
					Name   string `yaml:"name"`
					Target struct {
						Type               string `yaml:"type"`
						AverageUtilization int    `yaml:"averageUtilization"`
					} `yaml:"target"`
				} `yaml:"resource"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	k8sGet(t, "HorizontalPodAutoscaler", hpas[0].Metadata.Name, &hpa)
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != "chat-api" {
		t.Errorf("autoscaler scales %+v, want apps/v1 Deployment chat-api", ref)
	}
	if api.Spec.Replicas != nil {
		t.Errorf("Deployment chat-api sets replicas %d; every apply would override the autoscaler", *api.Spec.Replicas)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
		t.Errorf("autoscaler replicas %v..%d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 {
		t.Fatalf("autoscaler metrics %+v, want CPU alone", hpa.Spec.Metrics)
	}
	m := hpa.Spec.Metrics[0]
	if m.Type != "Resource" || m.Resource.Name != "cpu" || m.Resource.Target.Type != "Utilization" || m.Resource.Target.AverageUtilization != 70 {
		t.Errorf("autoscaler metric %+v, want CPU utilisation 70%%", m)
	}
}

// stripComments drops everything from marker to the end of each line.
func stripComments(s, marker string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if i := strings.Index(line, marker); i >= 0 {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}
