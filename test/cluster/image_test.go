package cluster

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestContainerImage builds the Containerfile with buildah, the way its
// header documents (static binary, CA certificates and time zone data in
// the build context), in a private buildah store, and runs `broker
// version` in the image.
func TestContainerImage(t *testing.T) {
	buildah := need(t, "buildah", "buildah")
	const certs, zoneinfo = "/etc/ssl/certs/ca-certificates.crt", "/usr/share/zoneinfo"
	if _, err := os.Stat(certs); err != nil {
		missing(t, certs, "ca-certificates")
	}
	if _, err := os.Stat(filepath.Join(zoneinfo, "Asia/Seoul")); err != nil {
		missing(t, zoneinfo, "tzdata")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := scratch(t)
	dist := filepath.Join(dir, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, brokerBinary(t), filepath.Join(dist, "broker"), 0o755)
	copyFile(t, certs, filepath.Join(dist, "ca-certificates.crt"), 0o644)
	if err := os.CopyFS(filepath.Join(dist, "zoneinfo"), os.DirFS(zoneinfo)); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	containerfile := filepath.Join(root, "Containerfile")

	// A private store (vfs: no overlay mounts needed), removed at the end.
	store := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"), "--storage-driver", "vfs"}
	bah := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, buildah, append(slices.Clone(store), args...)...)
		cmd.Env = append(os.Environ(), "BUILDAH_ISOLATION=chroot")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	const image = "localhost/broker:clustertest"
	bah("bud", "--isolation", "chroot", "--layers=false", "-f", containerfile, "-t", image, dist)
	t.Cleanup(func() {
		cmd := exec.Command(buildah, append(slices.Clone(store), "rm", "--all")...)
		_ = cmd.Run()
		cmd = exec.Command(buildah, append(slices.Clone(store), "rmi", "--all", "--force")...)
		_ = cmd.Run()
	})

	var cfg struct {
		OCIv1 struct {
			Config struct {
				User       string
				Entrypoint []string
				Env        []string
			}
		}
	}
	if err := json.Unmarshal([]byte(bah("inspect", "--type", "image", image)), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.OCIv1.Config
	if c.User != "65532:65532" {
		t.Errorf("USER = %q, want the numeric non-root 65532:65532", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/broker"}) {
		t.Errorf("ENTRYPOINT = %q, want [/broker]", c.Entrypoint)
	}

	ctr := bah("from", "--pull-never", image)

	// Nothing but the binary, the certificates and the zone data: no shell.
	mnt := bah("mount", ctr)
	var files []string
	err := filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		if !d.IsDir() && !strings.HasPrefix(rel, "usr/share/zoneinfo/") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"broker", "etc/ssl/certs/ca-certificates.crt"}
	for _, f := range files {
		if !slices.Contains(want, f) {
			t.Errorf("unexpected file in the image: /%s", f)
		}
	}
	for _, f := range append(want, "usr/share/zoneinfo/Asia/Seoul") {
		if _, err := os.Stat(filepath.Join(mnt, f)); err != nil {
			t.Errorf("/%s missing from the image", f)
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "bin/sh")); err == nil {
		t.Error("the image has a shell")
	}
	bah("umount", ctr)

	out := bah("run", "--isolation", "chroot", ctr, "--", "/broker", "version")
	if !strings.HasPrefix(out, "broker ") {
		t.Fatalf("broker version in the image printed %q", out)
	}
	t.Logf("in the image: %s", out)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
