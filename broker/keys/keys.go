// Package keys manages the broker's RS256 signing keys: generation,
// encryption at rest, a rotation schedule shared by every broker on one
// database, and the JWKS served from memory.
//
// Lifecycle of a key, derived from its activates_at and its successor's:
//
//	next     published, not yet signing (activates_at in the future)
//	active   the newest key whose activates_at has passed: it signs
//	retired  a successor is active; still published until
//	         successor.activates_at + access_ttl + jwks_max_age + skew
//	removed  past that: unpublished and deleted
//
// A new key activates only after PublishDelay + jwks_max_age, so every
// broker has published it (they reload every RefreshInterval) and every
// verifier's cached JWKS has expired before a token names it.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/socialbroker/broker/internal/seal"
	"github.com/socialbroker/broker/storage"
)

const (
	// RefreshInterval is how often a broker reloads the key table.
	RefreshInterval = 5 * time.Second
	// PublishDelay covers the time every broker needs to load a new key.
	PublishDelay = 3 * RefreshInterval
	// skew tolerates clock differences between brokers and verifiers.
	skew     = time.Minute
	keyBits  = 2048
	algRS256 = "RS256"
)

// ErrNoKey means no key can sign right now (none loaded yet).
var ErrNoKey = errors.New("keys: no active signing key")

// Store is what the manager needs from storage.
type Store interface {
	SigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	WithKeyLock(ctx context.Context, fn func(storage.KeyTx) error) error
}

// Config configures a Manager.
type Config struct {
	EncryptionKey []byte        // 32 bytes
	RotateEvery   time.Duration // keys.rotate_every
	MaxAge        time.Duration // keys.jwks_max_age
	AccessTTL     time.Duration // tokens.access_ttl
	Now           func() time.Time
	Logger        *slog.Logger
	OnRotate      func() // called once per key this broker created or first saw after its first load (metrics)
}

// Key is one loaded key.
type Key struct {
	KID         string
	ActivatesAt time.Time
	RetiresAt   time.Time // zero while no successor is scheduled
	RemoveAt    time.Time // zero while not retired
	Public      *rsa.PublicKey
	signer      *rsa.PrivateKey // with its CRT values precomputed once
}

// State is a key's lifecycle state at t.
func (k *Key) State(t time.Time) string {
	switch {
	case t.Before(k.ActivatesAt):
		return "next"
	case k.RetiresAt.IsZero() || t.Before(k.RetiresAt):
		return "active"
	case t.Before(k.RemoveAt):
		return "retired"
	default:
		return "removed"
	}
}

type snapshot struct {
	keys []*Key // published keys, by activation
	jwks []byte
	etag string
}

// Manager loads keys, signs with the active one and serves the JWKS. The
// JWKS and signing keep working from memory while the database is down.
type Manager struct {
	store      Store
	cfg        Config
	box        *seal.Box
	snap       atomic.Pointer[snapshot]
	mu         sync.Mutex // serialises Refresh
	unreadable atomic.Pointer[[]string]

	// For OnRotate: keys this manager created, and whether it has loaded
	// the keys once (those present then are not new to it). Under mu.
	mine   map[string]bool
	loaded bool
}

// ErrWrongEncryptionKey: stored signing keys do not open under
// keys.encryption_key, which is not the key they were stored with.
var ErrWrongEncryptionKey = errors.New("keys.encryption_key does not open the stored signing keys: it is not the key they were stored with (restore it, or see docs/operating.md to start a new key schedule)")

// New returns a Manager; call Refresh (or Ensure) before use.
func New(store Store, cfg Config) (*Manager, error) {
	box, err := seal.New(cfg.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("keys.encryption_key: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{store: store, cfg: cfg, box: box}
	m.snap.Store(&snapshot{jwks: []byte(`{"keys":[]}`), etag: etagOf([]byte(`{"keys":[]}`))})
	return m, nil
}

// removeAfter is how long a retired key stays published after its
// successor activated: every token it signed has expired and every cached
// JWKS has been refetched.
func (m *Manager) removeAfter() time.Duration {
	return m.cfg.AccessTTL + m.cfg.MaxAge + skew
}

// Refresh reloads the keys from the database. On failure the previous keys
// stay in use.
func (m *Manager) Refresh(ctx context.Context) error {
	rows, err := m.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.snap.Load()
	cache := make(map[string]*Key, len(old.keys))
	for _, k := range old.keys {
		cache[k.KID] = k
	}
	now := m.cfg.Now()
	var keys []*Key
	var unreadable []string
	for i, r := range rows {
		k, ok := cache[r.KID]
		if !ok || !k.ActivatesAt.Equal(r.ActivatesAt) {
			k, err = m.load(r)
			if err != nil {
				if errors.Is(err, ErrWrongEncryptionKey) {
					unreadable = append(unreadable, r.KID)
				}
				m.cfg.Logger.Error("signing key unusable", "kid", r.KID, "err", err)
				continue
			}
		} else {
			c := *k
			k = &c
		}
		k.RetiresAt, k.RemoveAt = time.Time{}, time.Time{}
		if i+1 < len(rows) {
			k.RetiresAt = rows[i+1].ActivatesAt
			k.RemoveAt = k.RetiresAt.Add(m.removeAfter())
		}
		if k.State(now) != "removed" {
			keys = append(keys, k)
		}
	}
	body, err := jwksOf(keys)
	if err != nil {
		return err
	}
	// A key is new to this broker when it created it, or first sees it after
	// its first load (another broker's rotation, `broker keys rotate`).
	if m.cfg.OnRotate != nil {
		for _, k := range keys {
			if _, known := cache[k.KID]; !known && (m.loaded || m.mine[k.KID]) {
				m.cfg.OnRotate()
			}
		}
	}
	m.loaded = true
	m.snap.Store(&snapshot{keys: keys, jwks: body, etag: etagOf(body)})
	m.unreadable.Store(&unreadable)
	return nil
}

// Unreadable lists the stored keys that keys.encryption_key does not open.
func (m *Manager) Unreadable() []string {
	if u := m.unreadable.Load(); u != nil {
		return *u
	}
	return nil
}

func (m *Manager) load(r storage.SigningKey) (*Key, error) {
	if r.Alg != algRS256 {
		return nil, fmt.Errorf("unsupported alg %q", r.Alg)
	}
	pubAny, err := x509.ParsePKIXPublicKey(r.PublicDER)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := pubAny.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("public key is not RSA")
	}
	der, err := m.box.Open(r.PrivateEnc, []byte(r.KID))
	if err != nil {
		return nil, fmt.Errorf("private key: %w", ErrWrongEncryptionKey)
	}
	privAny, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := privAny.(*rsa.PrivateKey)
	if !ok || !priv.PublicKey.Equal(pub) {
		return nil, errors.New("private key does not match its public key")
	}
	// Signing with the *rsa.PrivateKey itself (not a jwk.Key, which jwx
	// turns back into a fresh rsa.PrivateKey per signature) keeps the
	// precomputed values across signatures.
	priv.Precompute()
	return &Key{KID: r.KID, ActivatesAt: r.ActivatesAt, Public: pub, signer: priv}, nil
}

// Active returns the key that signs at the current time.
func (m *Manager) Active() (*Key, error) {
	now := m.cfg.Now()
	keys := m.snap.Load().keys
	for i := len(keys) - 1; i >= 0; i-- {
		if !now.Before(keys[i].ActivatesAt) {
			return keys[i], nil
		}
	}
	return nil, ErrNoKey
}

// Sign signs payload (the JSON claims) as a compact JWS with the active key:
// header {alg: RS256, kid, typ: at+jwt}.
func (m *Manager) Sign(payload []byte) ([]byte, error) {
	k, err := m.Active()
	if err != nil {
		return nil, err
	}
	// Headers per call: jws.Sign writes into them (alg), so they cannot be
	// shared between concurrent signatures.
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, k.KID)
	_ = h.Set(jws.TypeKey, "at+jwt")
	return jws.Sign(payload, jws.WithKey(jwa.RS256, k.signer, jws.WithProtectedHeaders(h)))
}

// PublicKey returns a published key by kid.
func (m *Manager) PublicKey(kid string) (*rsa.PublicKey, bool) {
	for _, k := range m.snap.Load().keys {
		if k.KID == kid {
			return k.Public, true
		}
	}
	return nil, false
}

// Keys returns the published keys, by activation.
func (m *Manager) Keys() []*Key { return m.snap.Load().keys }

// JWKS returns the precomputed JWKS document and its ETag.
func (m *Manager) JWKS() (body []byte, etag string) {
	s := m.snap.Load()
	return s.jwks, s.etag
}

// Ensure makes the database hold a usable schedule, under the key lock so
// that concurrent brokers make one decision: it creates the first key
// (active at once: no verifier can have cached an older JWKS), schedules
// the next key when the active one is due for rotation, and deletes keys
// past their removal time. Then it reloads.
func (m *Manager) Ensure(ctx context.Context) error {
	err := m.store.WithKeyLock(ctx, func(tx storage.KeyTx) error {
		rows, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		now := m.cfg.Now()
		if len(rows) == 0 {
			return m.create(ctx, tx, now, now)
		}
		for i := 0; i+1 < len(rows); i++ {
			if now.After(rows[i+1].ActivatesAt.Add(m.removeAfter())) {
				if err := tx.DeleteSigningKey(ctx, rows[i].KID); err != nil {
					return err
				}
			}
		}
		newest := rows[len(rows)-1]
		if newest.ActivatesAt.After(now) {
			return nil // a next key is already scheduled
		}
		lead := PublishDelay + m.cfg.MaxAge
		due := newest.ActivatesAt.Add(m.cfg.RotateEvery)
		if now.Add(lead).Before(due) {
			return nil
		}
		return m.create(ctx, tx, now, laterOf(due, now.Add(lead)))
	})
	if err != nil {
		return err
	}
	if err := m.Refresh(ctx); err != nil {
		return err
	}
	// No key to sign with because none opens: say so rather than fail later.
	if len(m.Unreadable()) > 0 {
		if k, err := m.Active(); err != nil || k.State(m.cfg.Now()) != "active" {
			return ErrWrongEncryptionKey
		}
	}
	return nil
}

// Rotate schedules the next key now (broker keys rotate): it is published
// at once and signs after PublishDelay + jwks_max_age. If a next key is
// already scheduled, that one is returned instead of stacking another.
func (m *Manager) Rotate(ctx context.Context) (kid string, activates time.Time, err error) {
	err = m.store.WithKeyLock(ctx, func(tx storage.KeyTx) error {
		rows, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		now := m.cfg.Now()
		if n := len(rows); n > 0 && rows[n-1].ActivatesAt.After(now) {
			kid, activates = rows[n-1].KID, rows[n-1].ActivatesAt
			return nil
		}
		at := now.Add(PublishDelay + m.cfg.MaxAge)
		if len(rows) == 0 {
			at = now
		}
		kid, activates = "", at
		k, err := m.generate(now, at)
		if err != nil {
			return err
		}
		kid = k.KID
		if err := tx.InsertSigningKey(ctx, k); err != nil {
			return err
		}
		m.markMine(k.KID)
		return nil
	})
	if err == nil {
		err = m.Refresh(ctx)
	}
	return kid, activates, err
}

func (m *Manager) create(ctx context.Context, tx storage.KeyTx, now, activates time.Time) error {
	k, err := m.generate(now, activates)
	if err != nil {
		return err
	}
	if err := tx.InsertSigningKey(ctx, k); err != nil {
		return err
	}
	m.cfg.Logger.Info("signing key created", "kid", k.KID, "activates_at", activates)
	m.markMine(k.KID)
	return nil
}

func (m *Manager) markMine(kid string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mine == nil {
		m.mine = map[string]bool{}
	}
	m.mine[kid] = true
}

func (m *Manager) generate(now, activates time.Time) (storage.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return storage.SigningKey{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return storage.SigningKey{}, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	kid := Thumbprint(&priv.PublicKey)
	return storage.SigningKey{
		KID: kid, Alg: algRS256, PublicDER: pubDER,
		PrivateEnc: m.box.Seal(privDER, []byte(kid)),
		CreatedAt:  now, ActivatesAt: activates,
	}, nil
}

// Run keeps the keys fresh until ctx ends: it reloads every
// RefreshInterval and makes scheduling decisions (Ensure) every minute.
// Database errors are logged and the loaded keys stay in use.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	lastEnsure := m.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if m.cfg.Now().Sub(lastEnsure) >= time.Minute {
			lastEnsure = m.cfg.Now()
			err = m.Ensure(ctx)
		} else {
			err = m.Refresh(ctx)
		}
		if err != nil && ctx.Err() == nil {
			m.cfg.Logger.Warn("signing keys not refreshed; serving the loaded ones", "err", err)
		}
	}
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key,
// base64url without padding: the key's kid.
func Thumbprint(pub *rsa.PublicKey) string {
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	n := base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
	sum := sha256.Sum256([]byte(`{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func jwksOf(keys []*Key) ([]byte, error) {
	doc := struct {
		Keys []jwkJSON `json:"keys"`
	}{Keys: make([]jwkJSON, 0, len(keys))}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, jwkJSON{
			Kty: "RSA", Kid: k.KID, Use: "sig", Alg: algRS256,
			N: base64.RawURLEncoding.EncodeToString(k.Public.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Public.E)).Bytes()),
		})
	}
	return json.Marshal(doc)
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
