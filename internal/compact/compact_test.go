package compact

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	// A signature whose last character carries unused bits (32 bytes: 43
	// characters, 2 spare bits).
	sig := make([]byte, 32)
	for i := range sig {
		sig[i] = byte(i * 7)
	}
	h, p, s := enc([]byte(`{"alg":"RS256"}`)), enc([]byte(`{"sub":"1"}`)), enc(sig)
	good := h + "." + p + "." + s
	parts, err := Decode(good)
	if err != nil || string(parts.Payload) != `{"sub":"1"}` || string(parts.Signature) != string(sig) {
		t.Fatalf("Decode(canonical) = %+v, %v", parts, err)
	}

	last := s[len(s)-1]
	sibling := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last) + 1
	bad := map[string]string{
		"newline in payload":   h + "." + p[:3] + "\n" + p[3:] + "." + s,
		"carriage return":      h + "\r." + p + "." + s,
		"padding":              h + "." + p + "." + s + "=",
		"standard alphabet":    h + "." + p + "." + base64.RawStdEncoding.EncodeToString(sig[:31]) + "+/",
		"trailing-bit sibling": h + "." + p + "." + s[:len(s)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[sibling]),
		"two segments":         h + "." + p,
		"four segments":        good + "." + s,
		"empty signature":      h + "." + p + ".",
		"space":                " " + good,
	}
	for name, raw := range bad {
		if _, err := Decode(raw); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("%s: err = %v, want ErrNotCanonical", name, err)
		}
	}
}
