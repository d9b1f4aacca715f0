package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped binary links no test fakes: no emulator package in its
// dependencies and no emulator symbol in the built binary (forged-token
// generators, gzip bombs and attacker key endpoints stay in test and dev
// builds).
func TestShippedBinaryHasNoEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	deps, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(deps)) {
		own := strings.HasPrefix(pkg, "github.com/socialbroker/broker/")
		if own && (strings.Contains(pkg, "fakeidp") || strings.Contains(pkg, "emulator") || strings.HasSuffix(pkg, "test")) {
			t.Errorf("./cmd/broker depends on %s", pkg)
		}
	}
	bin := filepath.Join(t.TempDir(), "broker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	syms, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(syms), "\n") {
		if strings.Contains(line, "/fakeidp.") || strings.Contains(line, "/emulator.") {
			if n++; n <= 5 {
				t.Errorf("emulator symbol in the binary: %s", strings.TrimSpace(line))
			}
		}
	}
	if n == 0 && !strings.Contains(string(syms), "internal/app.New") {
		t.Error("go tool nm found no broker symbols: the check looks at nothing")
	}
}
