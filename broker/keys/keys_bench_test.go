package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/internal/seal"
	"github.com/socialbroker/broker/storage"
)

// memStore is an in-memory keys.Store: no Postgres needed to sign.
type memStore struct {
	mu   sync.Mutex
	rows []storage.SigningKey
}

func (m *memStore) SigningKeys(context.Context) ([]storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rows), nil
}

func (m *memStore) WithKeyLock(ctx context.Context, fn func(storage.KeyTx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(memTx{m})
}

// memTx is the view inside WithKeyLock; m.mu is held.
type memTx struct{ m *memStore }

func (t memTx) SigningKeys(context.Context) ([]storage.SigningKey, error) {
	return slices.Clone(t.m.rows), nil
}

func (t memTx) InsertSigningKey(_ context.Context, k storage.SigningKey) error {
	t.m.rows = append(t.m.rows, k)
	slices.SortFunc(t.m.rows, func(a, b storage.SigningKey) int { return a.ActivatesAt.Compare(b.ActivatesAt) })
	return nil
}

func (t memTx) DeleteSigningKey(_ context.Context, kid string) error {
	t.m.rows = slices.DeleteFunc(t.m.rows, func(k storage.SigningKey) bool { return k.KID == kid })
	return nil
}

var benchEncKey = bytes.Repeat([]byte{0x42}, 32)

// benchManager returns a Manager with one active key, and that key's
// private half decrypted from the store (for the raw comparisons).
func benchManager(b *testing.B) (*keys.Manager, *rsa.PrivateKey, string) {
	b.Helper()
	st := &memStore{}
	m, err := keys.New(st, keys.Config{
		EncryptionKey: benchEncKey, RotateEvery: 720 * time.Hour, MaxAge: 10 * time.Minute, AccessTTL: 10 * time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Ensure(context.Background()); err != nil {
		b.Fatal(err)
	}
	rows, _ := st.SigningKeys(context.Background())
	box, err := seal.New(benchEncKey)
	if err != nil {
		b.Fatal(err)
	}
	der, err := box.Open(rows[0].PrivateEnc, []byte(rows[0].KID))
	if err != nil {
		b.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		b.Fatal(err)
	}
	priv := k.(*rsa.PrivateKey)
	priv.Precompute()
	return m, priv, rows[0].KID
}

// benchClaims is an access token's payload as the broker builds it.
func benchClaims(b *testing.B) []byte {
	p, err := json.Marshal(map[string]any{
		"iss": "https://auth.example.com", "sub": "f6ofzhdmxn2qkvbdmmn5ktuw7e", "aud": "https://api.example.com",
		"iat": 1767225600, "nbf": 1767225600, "exp": 1767226200, "jti": "3q2-7wAAAAAAAAAAAAAAAA",
		"sid": "ztttg3x4tbxdq2b2xlrsbcj4fy", "idp": "kakao",
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// rawCompact is a hand-made compact JWS with the same header: what signing
// an access token costs with nothing but crypto/rsa around it.
func rawCompact(priv *rsa.PrivateKey, header string, payload []byte) ([]byte, error) {
	enc := base64.RawURLEncoding
	in := make([]byte, 0, 1024)
	in = append(in, header...)
	in = append(in, '.')
	in = enc.AppendEncode(in, payload)
	sum := sha256.Sum256(in)
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	in = append(in, '.')
	return enc.AppendEncode(in, sig), nil
}

// BenchmarkSign compares signing an access token through Manager.Sign with
// the raw RSA-2048 PKCS#1 v1.5 SHA-256 signature underneath it.
//
//	Manager       keys.Manager.Sign
//	RawRSA        sha256 + rsa.SignPKCS1v15 on a precomputed *rsa.PrivateKey
//	RawCompact    the whole compact JWS by hand (base64, sha256, rsa, base64)
//	JWXJWKKey     jwx jws.Sign given a jwk.Key: jwx rebuilds an
//	              rsa.PrivateKey, and its precomputation, on every call
//	Interleaved   Manager and RawRSA alternately; reports manager/raw
//
// Manager/RawRSA is the overhead of the signing path over the primitive.
func BenchmarkSign(b *testing.B) {
	m, priv, kid := benchManager(b)
	payload := benchClaims(b)
	sum := sha256.Sum256(payload)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + kid + `","typ":"at+jwt"}`))

	// Sanity: every variant verifies with the published key.
	tok, err := m.Sign(payload)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := jws.Verify(tok, jws.WithKey(jwa.RS256, &priv.PublicKey)); err != nil {
		b.Fatal(err)
	}

	b.Run("Manager", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Sign(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RawRSA", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RawCompact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rawCompact(priv, header, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JWXJWKKey", func(b *testing.B) {
		h := jws.NewHeaders()
		_ = h.Set(jws.KeyIDKey, kid)
		_ = h.Set(jws.TypeKey, "at+jwt")
		jk, err := jwk.FromRaw(priv)
		if err != nil {
			b.Fatal(err)
		}
		out, err := jws.Sign(payload, jws.WithKey(jwa.RS256, jk, jws.WithProtectedHeaders(h)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.Verify(out, jws.WithKey(jwa.RS256, &priv.PublicKey)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jws.Sign(payload, jws.WithKey(jwa.RS256, jk, jws.WithProtectedHeaders(h))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Interleaved", func(b *testing.B) {
		b.ReportAllocs()
		var inManager, inRaw time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := m.Sign(payload); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:]); err != nil {
				b.Fatal(err)
			}
			inManager += t1.Sub(t0)
			inRaw += time.Since(t1)
		}
		b.ReportMetric(float64(inManager)/float64(inRaw), "manager/raw")
		b.ReportMetric(float64(inManager.Nanoseconds())/float64(b.N), "manager-ns/op")
		b.ReportMetric(float64(inRaw.Nanoseconds())/float64(b.N), "raw-ns/op")
	})
}

// BenchmarkSignParallel is Manager.Sign and raw RSA with GOMAXPROCS
// goroutines: the signing ceiling of the machine.
func BenchmarkSignParallel(b *testing.B) {
	m, priv, _ := benchManager(b)
	payload := benchClaims(b)
	sum := sha256.Sum256(payload)
	b.Run("Manager", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Sign(payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("RawRSA", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
