package keys

import (
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"testing"
	"time"
)

// The example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, want := Thumbprint(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestKeyStates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &Key{ActivatesAt: t0}
	if s := k.State(t0.Add(-time.Second)); s != "next" {
		t.Errorf("before activation: %s, want next", s)
	}
	if s := k.State(t0.Add(1000 * time.Hour)); s != "active" {
		t.Errorf("without a successor: %s, want active", s)
	}
	k.RetiresAt, k.RemoveAt = t0.Add(time.Hour), t0.Add(2*time.Hour)
	for at, want := range map[time.Duration]string{
		30 * time.Minute: "active", time.Hour: "retired", 119 * time.Minute: "retired", 2 * time.Hour: "removed",
	} {
		if s := k.State(t0.Add(at)); s != want {
			t.Errorf("at +%v: %s, want %s", at, s, want)
		}
	}
}
