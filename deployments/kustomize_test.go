package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/chatsys/chat/rediscluster"
)

const k8sClusterOverlayDir = "k8s/overlays/cluster"

// kustomizeBuild renders a kustomization as `kubectl apply -k` would.
func kustomizeBuild(dir string) ([]k8sObject, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	data, err := m.AsYaml()
	if err != nil {
		return nil, err
	}
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		obj := k8sObject{File: dir, node: &doc}
		if err := doc.Decode(&obj); err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

var (
	buildBase    = sync.OnceValues(func() ([]k8sObject, error) { return kustomizeBuild(k8sBaseDir) })
	buildOverlay = sync.OnceValues(func() ([]k8sObject, error) { return kustomizeBuild(k8sClusterOverlayDir) })
)

func built(t *testing.T, build func() ([]k8sObject, error), dir string) []k8sObject {
	t.Helper()
	objs, err := build()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

func objectIDs(objs []k8sObject) []string {
	var ids []string
	for _, o := range objs {
		if o.Kind != "Kustomization" {
			ids = append(ids, o.Kind+"/"+o.Metadata.Name)
		}
	}
	return slices.Sorted(slices.Values(ids))
}

func intOrUnset(p *int) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// getBuilt decodes the object of that kind and name into v.
func getBuilt(t *testing.T, objs []k8sObject, kind, name string, v any) {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			if err := o.node.Decode(v); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return
		}
	}
	t.Fatalf("%s: no %s %s", objs[0].File, kind, name)
}

// TestKustomizeBase: the base builds, into the objects its files hold.
func TestKustomizeBase(t *testing.T) {
	t.Parallel()
	objs := built(t, buildBase, k8sBaseDir)
	if got, want := objectIDs(objs), objectIDs(k8sObjects(t)); !slices.Equal(got, want) {
		t.Errorf("kustomize build %s gives %q, the files hold %q", k8sBaseDir, got, want)
	}
	for _, o := range objs {
		if o.Metadata.Labels["app.kubernetes.io/part-of"] != "chat" {
			t.Errorf("%s/%s lacks the label app.kubernetes.io/part-of=chat", o.Kind, o.Metadata.Name)
		}
	}
}

func TestKustomizeClusterOverlay(t *testing.T) {
	t.Parallel()
	base := built(t, buildBase, k8sBaseDir)
	objs := built(t, buildOverlay, k8sClusterOverlayDir)

	// The base's objects and nothing more: the engines are run by their own
	// operators or charts, not by this overlay.
	if got, want := objectIDs(objs), objectIDs(base); !slices.Equal(got, want) {
		t.Errorf("the overlay builds %q, the base %q: it adds or drops objects", got, want)
	}

	// Two workers; the API's count stays with its autoscaler, from two.
	var worker, api k8sWorkload
	getBuilt(t, objs, "Deployment", "chat-worker", &worker)
	getBuilt(t, objs, "Deployment", "chat-api", &api)
	if r := worker.Spec.Replicas; r == nil || *r != 2 {
		t.Errorf("chat-worker replicas %s, want 2", intOrUnset(r))
	}
	if api.Spec.Replicas != nil {
		t.Errorf("chat-api sets replicas %d; the autoscaler owns the count", *api.Spec.Replicas)
	}
	var hpa struct {
		Spec struct {
			MinReplicas *int `yaml:"minReplicas"`
			MaxReplicas int  `yaml:"maxReplicas"`
		} `yaml:"spec"`
	}
	getBuilt(t, objs, "HorizontalPodAutoscaler", "chat-api", &hpa)
	if r := hpa.Spec.MinReplicas; r == nil || *r != 2 || hpa.Spec.MaxReplicas < 2 {
		t.Errorf("chat-api autoscaler replicas %s..%d, want from 2", intOrUnset(r), hpa.Spec.MaxReplicas)
	}

	// The same images as the base (an overlay of a release pins its own).
	images := func(objs []k8sObject) []string {
		var out []string
		for _, o := range objs {
			if o.Kind != "Deployment" && o.Kind != "Job" {
				continue
			}
			var w k8sWorkload
			if err := o.node.Decode(&w); err != nil {
				t.Fatal(err)
			}
			for _, c := range w.Spec.Template.Spec.Containers {
				out = append(out, o.Metadata.Name+"="+c.Image)
			}
		}
		return slices.Sorted(slices.Values(out))
	}
	if got, want := images(objs), images(base); !slices.Equal(got, want) {
		t.Errorf("images %q, the base's %q", got, want)
	}

	// The configuration: variables the binary reads, each in one place, and
	// config.Load accepts them.
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	getBuilt(t, objs, "ConfigMap", "chat-config", &cm)
	var secret struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	getBuilt(t, objs, "Secret", "chat-secrets", &secret)
	if len(secret.Data) > 0 {
		t.Errorf("Secret chat-secrets: use stringData placeholders, not data")
	}
	known := knownVariables()
	env := map[string]string{}
	for what, m := range map[string]map[string]string{"ConfigMap": cm.Data, "Secret": secret.StringData} {
		for k, v := range m {
			if !chatVariable(known, k) {
				t.Errorf("%s: %s is not a variable the binary reads", what, k)
			}
			if _, dup := env[k]; dup {
				t.Errorf("%s is in both the ConfigMap and the Secret (the Secret's value would win)", k)
			}
			env[k] = v
		}
	}
	checkPartitions(t, "ConfigMap chat-config", cm.Data[partitionsVariable])
	cfg, err := loadConfig(env)
	if err != nil {
		t.Fatalf("config.Load rejects the overlay's configuration: %v", err)
	}

	// RabbitMQ: the three pods of the cluster's headless Service.
	var hosts []string
	for _, raw := range strings.Split(cfg.AMQPURL, ",") {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, u.Host)
	}
	if want := []string{"rabbitmq-0.rabbitmq:5672", "rabbitmq-1.rabbitmq:5672", "rabbitmq-2.rabbitmq:5672"}; !slices.Equal(hosts, want) {
		t.Errorf("CHAT_AMQP_URL names %q, want %q", hosts, want)
	}
	// Redis: the cluster form, seeded with pods of the Redis Cluster.
	if !rediscluster.IsClusterURL(cfg.RedisURL) {
		t.Errorf("CHAT_REDIS_URL %q is not go-redis's cluster form", cfg.RedisURL)
	}
	addrs, err := rediscluster.Check(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range addrs {
		if want := fmt.Sprintf("redis-cluster-%d.redis-cluster:6379", i); a != want {
			t.Errorf("CHAT_REDIS_URL seed %d is %s, want %s", i, a, want)
		}
	}
	if len(addrs) < 3 {
		t.Errorf("CHAT_REDIS_URL seeds %q: at least three", addrs)
	}

	// Everything the base configures and the overlay does not change stays.
	var baseCM struct {
		Data map[string]string `yaml:"data"`
	}
	getBuilt(t, base, "ConfigMap", "chat-config", &baseCM)
	for k, v := range baseCM.Data {
		if cm.Data[k] != v {
			t.Errorf("ConfigMap %s = %q, the base has %q", k, cm.Data[k], v)
		}
	}
}
