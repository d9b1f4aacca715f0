package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := b.Seal([]byte("private key"), []byte("kid-1"))
	if bytes.Contains(sealed, []byte("private key")) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := b.Open(sealed, []byte("kid-1"))
	if err != nil || string(got) != "private key" {
		t.Fatalf("Open = %q, %v; want %q", got, err, "private key")
	}
	// Bound to its associated data: a row's ciphertext moved to another kid fails.
	if _, err := b.Open(sealed, []byte("kid-2")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with other ad: got %v, want ErrOpen", err)
	}
	// Tampering fails.
	sealed[len(sealed)-1] ^= 1
	if _, err := b.Open(sealed, []byte("kid-1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open tampered: got %v, want ErrOpen", err)
	}
	// Another key fails.
	other, _ := New(bytes.Repeat([]byte{8}, 32))
	sealed[len(sealed)-1] ^= 1
	if _, err := other.Open(sealed, []byte("kid-1")); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with other key: got %v, want ErrOpen", err)
	}
	if _, err := New(key[:16]); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}
