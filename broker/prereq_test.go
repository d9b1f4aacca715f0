package broker_test

import (
	"os"
	"testing"
)

// requireInstalled skips the test with a loud message when something it
// needs beside Go and PostgreSQL is not installed, so that the README's
// test command passes on a machine with only those two; under CI=true
// (.ci/run installs everything) it fails the test instead.
func requireInstalled(t *testing.T, what, install string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed and CI=true: %s (.ci/run does it): %v", what, install, err)
	}
	t.Skipf("SKIPPED, NOT RUN: %s is not installed (%v); %s to run this test (with CI=true this is a failure)", what, err, install)
}
