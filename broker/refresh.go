package broker

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// Refresh tokens are 256 random bits, base64url without padding (43
// characters). The database keeps only SHA-256 hashes. A token's child is
// derived from it with HMAC under a key only the broker has, so a retry of
// the parent within the reuse grace gets the very same child back without
// the child ever being stored in a recoverable form.
const refreshTokenBytes = 32

var errMalformedToken = errors.New("malformed refresh token")

type refreshKeys struct{ child []byte }

func newRefreshKeys(encryptionKey []byte) (refreshKeys, error) {
	k, err := hkdf.Key(sha256.New, encryptionKey, nil, "broker refresh-token child v1", 32)
	return refreshKeys{child: k}, err
}

func newRefreshToken() []byte {
	b := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func encodeToken(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeToken(s string) ([]byte, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(refreshTokenBytes) {
		return nil, errMalformedToken
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errMalformedToken
	}
	return b, nil
}

func hashToken(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// child derives the token that replaces parent.
func (k refreshKeys) childOf(parent []byte) []byte {
	m := hmac.New(sha256.New, k.child)
	m.Write(parent)
	return m.Sum(nil)
}

// NewRefreshToken returns a fresh refresh token and the hash the store
// keeps of it (for tools and tests that create sessions directly).
func NewRefreshToken() (token string, hash []byte) {
	b := newRefreshToken()
	return encodeToken(b), hashToken(b)
}
