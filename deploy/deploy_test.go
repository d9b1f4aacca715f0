// The example deployments are parsed and checked here: no tool that
// validates Kubernetes manifests against their schemas can be had offline
// from the Go proxy or Debian, so the checks are the ones that matter for
// the broker (probes on the real endpoints, grace above the drain, a
// Secret reference for every ${VAR}, a config the broker accepts).
package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/socialbroker/broker/internal/config"
)

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// vars lists the ${VAR}s of a document, once each.
func vars(doc string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(doc, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// checkBrokerConfig parses a config with made-up values for its variables.
func checkBrokerConfig(t *testing.T, doc string) *config.Config {
	t.Helper()
	env := map[string]string{
		"BROKER_ISSUER":      "https://auth.example.com",
		"DATABASE_URL":       "postgres://broker@pgbouncer:5432/broker?default_query_exec_mode=cache_describe",
		"COOKIE_HASH_KEY":    strings.Repeat("QUFB", 64/3) + "QQ",
		"COOKIE_BLOCK_KEY":   strings.Repeat("QUFB", 10) + "QUE",
		"KEY_ENCRYPTION_KEY": strings.Repeat("QUFB", 10) + "QUE",
	}
	cfg, err := config.Parse([]byte(doc), func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return "x-" + strings.ToLower(k)
	})
	if err != nil {
		t.Fatalf("the broker refuses the deployment's config: %v", err)
	}
	return cfg
}

func TestBrokerConfig(t *testing.T) {
	b, err := os.ReadFile("broker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := checkBrokerConfig(t, string(b))
	if cfg.Listen != "0.0.0.0:8080" {
		t.Errorf("listen = %s: in a container it must listen on every interface, port 8080", cfg.Listen)
	}
	if cfg.Shutdown.Drain <= 0 {
		t.Error("shutdown.drain is off: balancers would still send requests to a stopping broker")
	}
}

func TestCompose(t *testing.T) {
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image           string            `yaml:"image"`
			Command         []string          `yaml:"command"`
			Environment     map[string]string `yaml:"environment"`
			Volumes         []string          `yaml:"volumes"`
			StopGracePeriod string            `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "pgbouncer", "broker1", "broker2", "haproxy"} {
		if _, ok := doc.Services[name]; !ok {
			t.Errorf("compose: no service %s", name)
		}
	}
	env, _ := os.ReadFile("compose/.env.example")
	cfg, _ := os.ReadFile("broker.yaml")
	for _, name := range []string{"broker1", "broker2"} {
		s := doc.Services[name]
		if s.Environment["DATABASE_URL"] == "" || !strings.Contains(s.Environment["DATABASE_URL"], "@pgbouncer:") ||
			!strings.Contains(s.Environment["DATABASE_URL"], "default_query_exec_mode=cache_describe") {
			t.Errorf("%s: DATABASE_URL %q, want PgBouncer with default_query_exec_mode=cache_describe", name, s.Environment["DATABASE_URL"])
		}
		for _, v := range vars(string(cfg)) {
			if _, ok := s.Environment[v]; !ok {
				t.Errorf("%s: the config's ${%s} is not in its environment", name, v)
			}
		}
		for _, v := range s.Environment {
			for _, ref := range vars(v) {
				if !bytes.Contains(env, []byte("\n"+ref+"=")) {
					t.Errorf("%s: ${%s} is not in .env.example", name, ref)
				}
			}
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= 5*time.Second {
			t.Errorf("%s: stop_grace_period %q, want above shutdown.drain (5s)", name, s.StopGracePeriod)
		}
	}
	hc, err := os.ReadFile("compose/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"balance roundrobin", "option httpchk GET /readyz", "server broker1 broker1:8080 check", "server broker2 broker2:8080 check"} {
		if !bytes.Contains(hc, []byte(want)) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas       int            `yaml:"replicas"`
		MaxUnavailable any            `yaml:"maxUnavailable"`
		MinAvailable   any            `yaml:"minAvailable"`
		Selector       map[string]any `yaml:"selector"`
		Template       struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name           string   `yaml:"name"`
					Args           []string `yaml:"args"`
					Env            []envVar `yaml:"env"`
					ReadinessProbe probe    `yaml:"readinessProbe"`
					LivenessProbe  probe    `yaml:"livenessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func TestKubernetes(t *testing.T) {
	b, err := os.ReadFile("kubernetes/broker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]manifest{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
			t.Fatalf("a manifest without apiVersion, kind or name: %+v", m)
		}
		byKind[m.Kind] = m
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Service"} {
		if _, ok := byKind[kind]; !ok {
			t.Errorf("no %s", kind)
		}
	}

	// The ConfigMap's config is deploy/broker.yaml, which the broker accepts.
	cfgDoc := byKind["ConfigMap"].Data["broker.yaml"]
	own, _ := os.ReadFile("broker.yaml")
	if cfgDoc != string(own) {
		t.Error("the ConfigMap's broker.yaml differs from deploy/broker.yaml")
	}
	cfg := checkBrokerConfig(t, cfgDoc)

	d := byKind["Deployment"].Spec
	pod := d.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the broker only", len(pod.Containers))
	}
	c := pod.Containers[0]
	if d.Replicas < 2 {
		t.Errorf("replicas %d, want several", d.Replicas)
	}
	if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("readinessProbe is not GET /readyz")
	}
	if c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("livenessProbe is not GET /healthz (a liveness probe on /readyz would restart brokers when the database is down)")
	}
	// serve drains for shutdown.drain, then waits up to 20 s for in-flight requests.
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= cfg.Shutdown.Drain {
		t.Errorf("terminationGracePeriodSeconds %v, want above shutdown.drain %v", grace, cfg.Shutdown.Drain)
	}
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("securityContext %+v, want runAsNonRoot and the image's user 65532", pod.SecurityContext)
	}
	for _, v := range vars(cfgDoc) {
		i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == v })
		if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil || c.Env[i].ValueFrom.SecretKeyRef.Key == "" {
			t.Errorf("the config's ${%s} has no secretKeyRef in the Deployment", v)
		}
	}
	pdb := byKind["PodDisruptionBudget"].Spec
	if pdb.MaxUnavailable == nil && pdb.MinAvailable == nil {
		t.Error("the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
}
