package broker

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/socialbroker/broker/storage"
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

// decodeToken accepts a refresh token only in its canonical form: 43
// base64url characters whose unused trailing bits are zero (Strict), so
// exactly one spelling exists for each token.
func decodeToken(s string) ([]byte, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(refreshTokenBytes) {
		return nil, errMalformedToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != refreshTokenBytes {
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

// liveSession judges a refresh token presented to an endpoint that does
// not rotate it (link, logout). Only a storage.Live outcome stands for the
// session; an older generation has revoked the session (a reuse, logged
// like one at the token endpoint), and a malformed token is Unknown.
func (s *Server) liveSession(ctx context.Context, raw string) (storage.Rotation, error) {
	tok, err := decodeToken(raw)
	if err != nil {
		return storage.Rotation{Outcome: storage.Unknown}, nil
	}
	rot, err := s.store.CheckRefresh(ctx, storage.CheckParams{
		Hash: hashToken(tok), Now: s.now(), Grace: s.cfg.Tokens.ReuseGrace, Idle: s.cfg.Tokens.RefreshIdleTTL,
	})
	if err != nil {
		return storage.Rotation{}, err
	}
	if rot.Outcome == storage.Reused {
		s.countRefresh(string(storage.Reused))
		s.log.WarnContext(ctx, "old refresh token presented: session revoked", "sid", rot.SessionID)
	}
	return rot, nil
}
