package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	rev := "abc123def4567890abc123def4567890abc12345"
	for _, c := range []struct {
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{"", nil, "devel"},
		{"v1.2.3", nil, "v1.2.3"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "false")},
			"v1.2.3 (rev abc123def456, 2026-12-01T10:00:00Z)"},
		{"", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("vcs.revision", rev, "vcs.time", "2026-12-01T10:00:00Z", "vcs.modified", "true")},
			"devel (rev abc123def456, modified, 2026-12-01T10:00:00Z)"},
		{"v2.0.0-rc.1", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201100000-abc123def456"}, Settings: vcs("vcs.revision", rev)},
			"v2.0.0-rc.1 (rev abc123def456)"},
	} {
		if got := formatVersion(c.ldflags, c.bi); got != c.want {
			t.Errorf("formatVersion(%q, …) = %q, want %q", c.ldflags, got, c.want)
		}
	}
}

// The release build of docs/releasing.md prints the version given with
// -ldflags and, when built from a git checkout, the revision and its time
// from the build info.
func TestReleaseBuildPrintsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "broker")
	// -buildvcs=auto overrides a GOFLAGS=-buildvcs=false of the machine;
	// a git worktree (whose .git is a file) still gets no VCS stamp.
	build := exec.Command("go", "build", "-buildvcs=auto", "-trimpath", "-ldflags=-s -w -X main.version=v9.8.7", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("broker version: %v", err)
	}
	got := strings.TrimSpace(string(out))
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	want := regexp.MustCompile(`^broker v9\.8\.7$`)
	if strings.Contains(string(info), "vcs.revision=") { // built inside a git checkout
		want = regexp.MustCompile(`^broker v9\.8\.7 \(rev [0-9a-f]{12}(, modified)?, \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$`)
		if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && !strings.Contains(got, "rev "+string(head[:12])) {
			t.Errorf("broker version = %q, want the revision %s", got, head[:12])
		}
	} else {
		t.Logf("built without VCS information (not a git clone, or no git): %q", got)
	}
	if !want.MatchString(got) {
		t.Errorf("broker version = %q, want %s\n%s", got, want, info)
	}
}
