package config

import (
	"strings"
	"testing"
	"time"
)

func TestShutdownDrain(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
		err  string
	}{
		{"", 5 * time.Second, ""},
		{"shutdown: {drain: 0s}\n", 0, ""},
		{"shutdown: {drain: 1500ms}\n", 1500 * time.Millisecond, ""},
		{"shutdown: {drain: -1s}\n", 0, "shutdown.drain: must be positive"},
		{"shutdown: {drain: soon}\n", 0, "shutdown.drain: not a duration"},
		{"shutdown: {grace: 1s}\n", 0, "shutdown.grace: unknown key"},
	} {
		c, err := Parse([]byte(valid+tc.yaml), env(goodEnv()))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if c.Shutdown.Drain != tc.want {
			t.Errorf("%q: drain = %v, want %v", tc.yaml, c.Shutdown.Drain, tc.want)
		}
	}
}
