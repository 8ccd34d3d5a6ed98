package deployments

import (
	"encoding/json"
	"fmt"
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

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

const (
	observabilityDir  = "observability"
	promConfigPath    = "observability/prometheus.yml"
	promK8sConfigPath = "observability/prometheus-kubernetes.yml"
	alertsPath        = "observability/alerts.yml"
	alertsTestPath    = "observability/alerts_test.yml"
	dashboardPath     = "observability/grafana-dashboard.json"
	grafanaDSPath     = "observability/grafana-datasource.yml"
	grafanaDashPath   = "observability/grafana-dashboards.yml"
	obsReadmePath     = "observability/README.md"
)

// metricKind says which series names a metric has: a histogram's are its
// _bucket, _sum and _count.
type metricKind int

const (
	single metricKind = iota
	histogram
)

// dashboardMetrics are the metrics the dashboard and the alert rules may
// use: the chat processes' own (each documented in
// deployments/observability/README.md, as TestObservabilityReadme checks)
// and the standard ones of Prometheus (up) and of client_golang's
// collectors, which every chat process registers.
var dashboardMetrics = map[string]metricKind{
	"chat_http_request_seconds":               histogram,
	"chat_publish_seconds":                    histogram,
	"chat_eventstore_records_total":           single,
	"chat_eventstore_append_batch_size":       histogram,
	"chat_eventstore_append_partitions":       histogram,
	"chat_eventstore_append_seconds":          histogram,
	"chat_eventstore_partitions":              single,
	"chat_eventstore_partition_writer":        single,
	"chat_projection_lag_events":              single,
	"chat_projection_lag_seconds":             single,
	"chat_projection_delay_seconds":           histogram,
	"chat_projection_events_total":            single,
	"chat_search_parked_total":                single,
	"chat_queue_messages":                     single,
	"chat_queue_up":                           single,
	"chat_numbering_lost_slots":               single,
	"chat_idempotency_claims_total":           single,
	"chat_redis_pool_connections":             single,
	"chat_redis_pool_idle_connections":        single,
	"chat_redis_pool_max_connections":         single,
	"chat_redis_pool_waits_total":             single,
	"chat_redis_pool_timeouts_total":          single,
	"up":                                      single,
	"process_resident_memory_bytes":           single,
	"go_goroutines":                           single,
	"go_sql_in_use_connections":               single,
	"go_sql_wait_duration_seconds_total":      single,
	"go_sql_open_connections":                 single,
	"go_sql_max_open_connections":             single,
	"go_sql_wait_count_total":                 single,
	"process_cpu_seconds_total":               single,
	"chat_redis_pool_wait_seconds_total":      single,
	"chat_redis_pool_hits_total":              single,
	"chat_redis_pool_misses_total":            single,
	"chat_redis_pool_stale_connections_total": single,
}

// knownSeries maps a series name to the metric it belongs to.
func knownSeries(name string) (string, bool) {
	if _, ok := dashboardMetrics[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && dashboardMetrics[base] == histogram {
			if _, ok := dashboardMetrics[base]; ok {
				return base, true
			}
		}
	}
	return "", false
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGroupings = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlVariables = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promqlTokens    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9][0-9A-Za-z_.]*`)
	promqlKeywords  = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
		"atan2": true,
	}
)

// promqlMetricNames returns the series names a PromQL expression selects:
// every identifier that is not a function, aggregation, keyword, label name
// or Grafana variable. Enough for the expressions of these files, which
// promtool parses for real.
func promqlMetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGroupings.ReplaceAllString(s, " ")
	s = promqlVariables.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promqlTokens.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || promqlKeywords[strings.ToLower(tok)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		names = append(names, tok)
	}
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string][]string{
		`sum by (le, route) (rate(chat_http_request_seconds_bucket{status=~"5.."}[$__rate_interval]))`:                    {"chat_http_request_seconds_bucket"},
		`max(chat_eventstore_partitions) - (sum(max by (partition) (chat_eventstore_partition_writer)) or vector(0)) > 0`: {"chat_eventstore_partitions", "chat_eventstore_partition_writer"},
		`a unless b offset 10m`:                                      {"a", "b"},
		`absent(up{job="chat-worker"} == 1)`:                         {"up"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))`: {"x_bucket"},
		`foo{a="b{c}"} / on (instance) group_left (job) bar`:         {"foo", "bar"},
	} {
		if got := promqlMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// promtool returns the path of promtool, which Debian's prometheus package
// installs (.ci/run installs it). The tests that need it fail without it,
// except under -short.
func promtool(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs promtool; -short runs only the tests that need no tool")
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool: %v (apt-get install --no-install-recommends prometheus)", err)
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ---------------------------------------------------------------------------
// Prometheus configuration

type promScrapeConfig struct {
	JobName      string `yaml:"job_name"`
	MetricsPath  string `yaml:"metrics_path"`
	DNSSDConfigs []struct {
		Names []string `yaml:"names"`
		Type  string   `yaml:"type"`
		Port  int      `yaml:"port"`
	} `yaml:"dns_sd_configs"`
	KubernetesSDConfigs []struct {
		Role string `yaml:"role"`
	} `yaml:"kubernetes_sd_configs"`
	RelabelConfigs []struct {
		SourceLabels []string `yaml:"source_labels"`
		Regex        string   `yaml:"regex"`
		Action       string   `yaml:"action"`
	} `yaml:"relabel_configs"`
}

type promConfig struct {
	RuleFiles     []string           `yaml:"rule_files"`
	ScrapeConfigs []promScrapeConfig `yaml:"scrape_configs"`
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// chatJobs are the scrape jobs, by the Deployment (and compose service)
// whose processes they scrape.
var chatJobs = map[string]struct{ deployment, service string }{
	"chat-api":    {"chat-api", "api"},
	"chat-worker": {"chat-worker", "worker"},
}

func TestPrometheusConfigValid(t *testing.T) {
	t.Parallel()
	if out, err := runPromtool(t, observabilityDir, "check", "config", filepath.Base(promConfigPath)); err != nil {
		t.Errorf("promtool check config %s: %v\n%s", promConfigPath, err, out)
	}

	out, err := runPromtool(t, observabilityDir, "check", "config", filepath.Base(promK8sConfigPath))
	if err == nil {
		return
	}
	if !strings.Contains(out, "field kubernetes_sd_configs not found") {
		t.Fatalf("promtool check config %s: %v\n%s", promK8sConfigPath, err, out)
	}
	// Debian builds Prometheus without Kubernetes discovery. Check the rest
	// of the file: the same configuration with static targets instead.
	t.Logf("this promtool has no Kubernetes discovery; checking %s with static targets in its place", promK8sConfigPath)
	var doc map[string]any
	readYAML(t, promK8sConfigPath, &doc)
	scrapes, _ := doc["scrape_configs"].([]any)
	for _, sc := range scrapes {
		m := sc.(map[string]any)
		if _, ok := m["kubernetes_sd_configs"]; !ok {
			t.Fatalf("%s: job %v has no kubernetes_sd_configs", promK8sConfigPath, m["job_name"])
		}
		delete(m, "kubernetes_sd_configs")
		m["static_configs"] = []any{map[string]any{"targets": []any{"127.0.0.1:8080"}}}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(alertsPath)), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, dir, "check", "config", "prometheus.yml"); err != nil {
		t.Errorf("promtool check config %s (static targets): %v\n%s", promK8sConfigPath, err, out)
	}
}

func TestPrometheusScrapeJobs(t *testing.T) {
	t.Parallel()
	for _, file := range []string{promConfigPath, promK8sConfigPath} {
		var c promConfig
		readYAML(t, file, &c)
		if !slices.Equal(c.RuleFiles, []string{filepath.Base(alertsPath)}) {
			t.Errorf("%s: rule_files %q, want [%s] beside it", file, c.RuleFiles, filepath.Base(alertsPath))
		}
		var jobs []string
		for _, sc := range c.ScrapeConfigs {
			jobs = append(jobs, sc.JobName)
			if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
				t.Errorf("%s: job %s scrapes %s; the processes serve /metrics", file, sc.JobName, sc.MetricsPath)
			}
		}
		if want := slices.Sorted(func(yield func(string) bool) {
			for j := range chatJobs {
				if !yield(j) {
					return
				}
			}
		}); !slices.Equal(slices.Sorted(slices.Values(jobs)), want) {
			t.Errorf("%s: jobs %q, want %q (the names alerts.yml and the dashboard use)", file, jobs, want)
		}
	}

	// Docker Compose: each job resolves its compose service's replicas, on
	// the port the processes listen on, in both compose files.
	var c promConfig
	readYAML(t, promConfigPath, &c)
	for _, p := range []*types.Project{project(t), clusterProject(t)} {
		for _, sc := range c.ScrapeConfigs {
			want := chatJobs[sc.JobName].service
			if len(sc.DNSSDConfigs) != 1 || !slices.Equal(sc.DNSSDConfigs[0].Names, []string{want}) || sc.DNSSDConfigs[0].Type != "A" {
				t.Errorf("%s: job %s does not resolve the A records of service %s: %+v", promConfigPath, sc.JobName, want, sc.DNSSDConfigs)
				continue
			}
			s := service(t, p, want)
			port := listenPort(t, chatEnvironment(t, s)["CHAT_HTTP_ADDR"])
			if fmt.Sprint(sc.DNSSDConfigs[0].Port) != port {
				t.Errorf("%s: job %s scrapes port %d, %s listens on %s", promConfigPath, sc.JobName, sc.DNSSDConfigs[0].Port, want, port)
			}
		}
	}

	// Kubernetes: each job keeps the pods of its Deployment, on the port
	// named like the container's.
	readYAML(t, promK8sConfigPath, &c)
	for _, sc := range c.ScrapeConfigs {
		var w k8sWorkload
		k8sGet(t, "Deployment", chatJobs[sc.JobName].deployment, &w)
		labels := w.Spec.Template.Metadata.Labels
		keep := map[string]string{}
		for _, r := range sc.RelabelConfigs {
			if r.Action == "keep" && len(r.SourceLabels) == 1 {
				keep[r.SourceLabels[0]] = r.Regex
			}
		}
		if got, want := keep["__meta_kubernetes_pod_label_app_kubernetes_io_name"], labels["app.kubernetes.io/name"]; got != want || want == "" {
			t.Errorf("%s: job %s keeps pods labelled %q, the Deployment's are %q", promK8sConfigPath, sc.JobName, got, want)
		}
		c := w.Spec.Template.Spec.Containers[0]
		if len(c.Ports) != 1 || keep["__meta_kubernetes_pod_container_port_name"] != c.Ports[0].Name {
			t.Errorf("%s: job %s keeps port %q, the container's is %+v", promK8sConfigPath, sc.JobName, keep["__meta_kubernetes_pod_container_port_name"], c.Ports)
		}
		if len(sc.KubernetesSDConfigs) != 1 || sc.KubernetesSDConfigs[0].Role != "pod" {
			t.Errorf("%s: job %s does not discover pods: %+v", promK8sConfigPath, sc.JobName, sc.KubernetesSDConfigs)
		}
	}

	// The compose service mounts the configuration and the rules side by
	// side, where rule_files finds them.
	prom := service(t, clusterProject(t), "prometheus")
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounts[v.Source] = v.Target
		}
	}
	cfgFile, _ := filepath.Abs(promConfigPath)
	rulesFile, _ := filepath.Abs(alertsPath)
	if mounts[cfgFile] == "" || path.Dir(mounts[cfgFile]) != path.Dir(mounts[rulesFile]) || path.Base(mounts[rulesFile]) != filepath.Base(alertsPath) {
		t.Errorf("prometheus mounts %v; want %s and %s side by side", mounts, promConfigPath, alertsPath)
	}
	if !slices.Contains(prom.Command, "--config.file="+mounts[cfgFile]) {
		t.Errorf("prometheus runs %q, not with --config.file=%s", prom.Command, mounts[cfgFile])
	}
}

// ---------------------------------------------------------------------------
// Alert rules

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

var loadAlerts = sync.OnceValues(func() ([]alertRule, error) {
	data, err := os.ReadFile(alertsPath)
	if err != nil {
		return nil, err
	}
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules, nil
})

func alerts(t *testing.T) []alertRule {
	t.Helper()
	r, err := loadAlerts()
	if err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	return r
}

func TestAlertRulesValid(t *testing.T) {
	t.Parallel()
	if out, err := runPromtool(t, observabilityDir, "check", "rules", filepath.Base(alertsPath)); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := runPromtool(t, observabilityDir, "test", "rules", filepath.Base(alertsTestPath)); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

var jobMatcher = regexp.MustCompile(`\bjob\s*(=~|=)\s*"([^"]*)"`)

func TestAlertRules(t *testing.T) {
	t.Parallel()
	required := []string{
		// Parked events: dead-letter queue, search, conflicts.
		"ChatEventsDeadLettered", "ChatSearchParkedEvents", "ChatEventStoreConflicts",
		// Partitions, projections, numbering.
		"ChatPartitionWithoutWriter", "ChatNoWorker", "ChatProjectionLagging", "ChatNumberingStateLost",
		// API, broker, processes.
		"ChatHighServerErrorRate", "ChatPublishFailures", "ChatQueueUnreachable", "ChatTargetDown",
	}
	seen := map[string]bool{}
	for _, r := range alerts(t) {
		if r.Alert == "" {
			t.Errorf("%s: a rule that is not an alert: %+v", alertsPath, r)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("%s: alert %s twice", alertsPath, r.Alert)
		}
		seen[r.Alert] = true
		if s := r.Labels["severity"]; s != "page" && s != "ticket" {
			t.Errorf("%s: severity %q, want page or ticket", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", r.Alert)
		}
		for _, name := range promqlMetricNames(r.Expr) {
			if _, ok := knownSeries(name); !ok {
				t.Errorf("%s: expression uses %s, which is not a known metric (dashboardMetrics)", r.Alert, name)
			}
		}
		for _, m := range jobMatcher.FindAllStringSubmatch(r.Expr, -1) {
			re := regexp.MustCompile("^(?:" + m[2] + ")$")
			matched := 0
			for job := range chatJobs {
				if re.MatchString(job) {
					matched++
				}
			}
			if matched == 0 || m[1] == "=" && chatJobs[m[2]].service == "" {
				t.Errorf("%s: job%s%q names no scrape job of prometheus.yml", r.Alert, m[1], m[2])
			}
		}
	}
	for _, name := range required {
		if !seen[name] {
			t.Errorf("%s has no alert %s", alertsPath, name)
		}
	}

	// The rules whose arithmetic matters most have unit tests.
	data, err := os.ReadFile(alertsTestPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ChatPartitionWithoutWriter", "ChatNoWorker", "ChatProjectionLagging", "ChatEventStoreConflicts", "ChatNumberingStateLost"} {
		if !regexp.MustCompile(`alertname:\s*` + name + `\b`).Match(data) {
			t.Errorf("%s does not test %s", alertsTestPath, name)
		}
	}
}

// ---------------------------------------------------------------------------
// Grafana

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func dashboard(t *testing.T) (grafanaDashboard, []grafanaPanel) {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", dashboardPath)
	}
	var all []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, all
}

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	d, panels := dashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	// The datasource is a variable, so the dashboard imports into any
	// Grafana whatever its Prometheus is called.
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = v.Name
		}
	}
	if dsVar == "" {
		t.Fatalf("no datasource variable of type prometheus in templating")
	}

	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	queries := 0
	for _, p := range panels {
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		switch p.Type {
		case "row":
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		case "timeseries", "stat", "gauge", "table", "bargauge", "state-timeline":
		default:
			t.Errorf("panel %q: type %q", p.Title, p.Type)
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${"+dsVar+"}" {
			t.Errorf("panel %q: datasource %+v, want the ${%s} variable", p.Title, p.Datasource, dsVar)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			queries++
			if q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, q.RefID)
			}
			refs[q.RefID] = true
			names := promqlMetricNames(q.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q selects no metric", p.Title, q.Expr)
			}
			for _, name := range names {
				if _, ok := knownSeries(name); !ok {
					t.Errorf("panel %q: query uses %s, which is not a known metric (dashboardMetrics)", p.Title, name)
				}
			}
		}
	}
	if queries < 20 {
		t.Errorf("%d queries; the dashboard should cover the API, event store, projections, broker and Redis", queries)
	}

	// The metrics whose alerts page someone are on the dashboard.
	used := map[string]bool{}
	for _, p := range panels {
		for _, q := range p.Targets {
			for _, n := range promqlMetricNames(q.Expr) {
				base, _ := knownSeries(n)
				used[base] = true
			}
		}
	}
	for _, r := range alerts(t) {
		for _, n := range promqlMetricNames(r.Expr) {
			if base, _ := knownSeries(n); base != "up" && !used[base] {
				t.Errorf("alert %s uses %s, which no panel shows", r.Alert, base)
			}
		}
	}
}

// TestGrafanaQueriesParse has promtool parse every query of the dashboard,
// as recording rules, with Grafana's variables given values.
func TestGrafanaQueriesParse(t *testing.T) {
	t.Parallel()
	_, panels := dashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range panels {
		for _, q := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d_%s", p.ID, q.RefID), Expr: vars.Replace(q.Expr)})
		}
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, dir, "check", "rules", "dashboard.yml"); err != nil {
		t.Errorf("the dashboard's queries do not parse: %v\n%s", err, out)
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	p := clusterProject(t)
	grafana := service(t, p, "grafana")
	mounts := map[string]string{}
	for _, v := range grafana.Volumes {
		if v.Type == types.VolumeTypeBind {
			rel, err := filepath.Rel(mustAbs(t, "."), v.Source)
			if err != nil {
				t.Fatal(err)
			}
			mounts[filepath.ToSlash(rel)] = v.Target
		}
	}
	for file, dir := range map[string]string{
		grafanaDSPath:   "/etc/grafana/provisioning/datasources/",
		grafanaDashPath: "/etc/grafana/provisioning/dashboards/",
	} {
		if !strings.HasPrefix(mounts[file], dir) {
			t.Errorf("grafana mounts %s at %q, want in %s", file, mounts[file], dir)
		}
	}

	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, grafanaDSPath, &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("%s: %+v, want one Prometheus", grafanaDSPath, ds.Datasources)
	}
	u, err := url.Parse(ds.Datasources[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	prom := service(t, p, "prometheus")
	listens := false
	for _, pt := range prom.Ports {
		listens = listens || fmt.Sprint(pt.Target) == port
	}
	if _, ok := p.Services[host]; !ok || !listens {
		t.Errorf("%s: datasource %s is not the prometheus service's port", grafanaDSPath, u)
	}

	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, grafanaDashPath, &dash)
	if len(dash.Providers) != 1 || path.Dir(mounts[dashboardPath]) != dash.Providers[0].Options.Path {
		t.Errorf("%s loads dashboards from %+v; %s is mounted at %q", grafanaDashPath, dash.Providers, dashboardPath, mounts[dashboardPath])
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestObservabilityReadme: every chat metric the dashboard and the rules may
// use, and every alert, is documented.
func TestObservabilityReadme(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(obsReadmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for name := range dashboardMetrics {
		if strings.HasPrefix(name, "chat_") && !strings.Contains(readme, "`"+name) {
			t.Errorf("%s does not document %s", obsReadmePath, name)
		}
	}
	for _, r := range alerts(t) {
		if !strings.Contains(readme, "`"+r.Alert+"`") {
			t.Errorf("%s does not document the alert %s", obsReadmePath, r.Alert)
		}
	}
}
