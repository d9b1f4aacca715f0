package verify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A service that imports verify builds only verify, the broker's tiny
// canonical-JWS reader and the standard library: no Postgres driver, none of the broker's server packages, no
// metrics library.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	forbidden := []string{
		"github.com/jackc", "github.com/socialbroker/broker/broker", "github.com/socialbroker/broker/storage",
		"github.com/socialbroker/broker/providers", "github.com/prometheus",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("verify depends on %s (under %s)", d, f)
			}
		}
	}
	want := []string{"github.com/socialbroker/broker/internal/compact", "github.com/socialbroker/broker/verify"}
	if strings.Join(deps, " ") != strings.Join(want, " ") {
		t.Errorf("non-standard packages in verify's build: got %q, want %q", deps, want)
	}
}
