package broker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// deleteMe is DELETE /auth/me: the user, identities and sessions go in one
// transaction; the provider grants are revoked afterwards from the outbox.
func (s *Server) deleteMe(w http.ResponseWriter, r *http.Request) error {
	c, err := s.bearer(r)
	if err != nil {
		return err
	}
	err = s.store.DeleteUser(r.Context(), c.Sub, s.now(), "self")
	if errors.Is(err, storage.ErrNotFound) {
		return errInvalidToken(err)
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "user deleted", "user_id", c.Sub, "reason", "self")
	s.kickRevocations()
	s.clearRefreshCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unlinkIdentity is DELETE /auth/identities/{provider}.
func (s *Server) unlinkIdentity(w http.ResponseWriter, r *http.Request) error {
	c, err := s.bearer(r)
	if err != nil {
		return err
	}
	err = s.store.UnlinkIdentity(r.Context(), c.Sub, r.PathValue("provider"), s.now())
	switch {
	case errors.Is(err, storage.ErrLastIdentity):
		return &apiError{Status: http.StatusConflict, Code: codeLastIdentity,
			Description: "This is the account's only sign-in method; link another one first."}
	case errors.Is(err, storage.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: codeNotFound, Description: "No identity of this provider is linked."}
	case err != nil:
		return err
	}
	s.kickRevocations()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// providerNotification serves /auth/webhooks/{hook}: a provider calling
// back about one of its users (Kakao's unlink webhook). The provider whose
// credentials the request carries reads it; it answers well within Kakao's
// 3 s.
func (s *Server) providerNotification(w http.ResponseWriter, r *http.Request) error {
	hook := strings.TrimPrefix(r.URL.Path, "/auth/webhooks/")
	var recv providers.NotificationReceiver
	for _, n := range s.providers.Receivers(hook) {
		if n.Authenticates(r) {
			recv = n
			break
		}
	}
	if recv == nil {
		return &apiError{Status: http.StatusUnauthorized, Code: codeInvalidClient, Description: "Missing or wrong provider authorization."}
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	n, err := recv.ReadNotification(r)
	if err != nil {
		return notificationError(err)
	}
	name := recv.(providers.Provider).Info().Name
	ctx, cancel := context.WithTimeout(r.Context(), 2500*time.Millisecond)
	defer cancel()
	a := storage.ActorOf(ctx)
	a.Name = "provider"
	if err := s.applyNotification(storage.WithActor(ctx, a), name, hook, n); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (s *Server) kickRevocations() {
	select {
	case s.revokeKick <- struct{}{}:
	default:
	}
}

// RunRevocations works the revocation outbox until ctx ends: on a kick
// (an account was deleted or unlinked) and every 30 s.
func (s *Server) RunRevocations(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if _, _, err := s.ProcessRevocations(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("revocation outbox not processed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.revokeKick:
		}
	}
}

// revocationLease is how long a claimed revocation is ours before another
// broker may try it.
const revocationLease = time.Minute

// revocationGiveUp is how long a failing revocation is retried before it is
// abandoned with an error in the log: long enough to fix a wrong admin key
// or wait out a provider's outage, short of retrying a lost cause forever.
const revocationGiveUp = 30 * 24 * time.Hour

// ProcessRevocations tries every due revocation once. A provider that
// fails or times out is retried later with exponential backoff; a grant
// that cannot be revoked (unsupported, nothing kept) is dropped.
func (s *Server) ProcessRevocations(ctx context.Context) (done, failed int, err error) {
	for {
		batch, err := s.store.ClaimRevocations(ctx, s.now(), revocationLease, 16)
		if err != nil || len(batch) == 0 {
			return done, failed, err
		}
		for _, rv := range batch {
			if s.revokeOne(ctx, rv) {
				done++
			} else {
				failed++
			}
		}
	}
}

func (s *Server) revokeOne(ctx context.Context, rv storage.Revocation) bool {
	finish := func() bool {
		if err := s.store.FinishRevocation(ctx, rv.ID); err != nil {
			s.log.Warn("revocation done but not recorded", "id", rv.ID, "err", err)
		}
		return true
	}
	p, ok := s.providers.Get(rv.Provider)
	rev, canRevoke := p.(providers.Revoker)
	if !ok || !canRevoke {
		s.log.Info("grant not revocable at provider; dropped", "provider", rv.Provider)
		return finish()
	}
	// The same provider account came back (signed up or linked again) since
	// the row was queued: the provider's grant is the new one now.
	if _, err := s.store.IdentityUser(ctx, rv.Provider, rv.Subject); err == nil {
		s.log.Info("identity is back; revocation cancelled", "provider", rv.Provider)
		return finish()
	} else if !errors.Is(err, storage.ErrNotFound) {
		s.log.Warn("revocation postponed: identity lookup failed", "provider", rv.Provider, "err", err)
		return false // the lease expires and the row is claimed again
	}
	g, err := s.openGrant(rv.Provider, rv.Subject, rv.GrantEnc)
	if err != nil {
		s.log.Warn("stored grant unreadable; dropped", "provider", rv.Provider, "err", err)
		return finish()
	}
	err = rev.Revoke(ctx, rv.Subject, g)
	switch {
	case err == nil:
		s.log.Info("grant revoked at provider", "provider", rv.Provider, "attempt", rv.Attempts)
		return finish()
	case errors.Is(err, providers.ErrRevokeUnsupported) || providers.ErrorCode(err) == providers.CodeInvalidGrant:
		s.log.Info("nothing to revoke at provider; dropped", "provider", rv.Provider, "code", providers.ErrorCode(err))
		return finish()
	}
	code := providers.ErrorCode(err)
	if age := s.now().Sub(rv.CreatedAt); age > revocationGiveUp {
		s.log.Error("grant revocation abandoned after retrying for too long", "provider", rv.Provider,
			"attempt", rv.Attempts, "code", code, "queued_for", age.Round(time.Hour).String())
		return finish()
	}
	backoff := 30 * time.Second << min(rv.Attempts-1, 7) // 30 s … 64 min
	s.log.Warn("grant revocation failed; will retry", "provider", rv.Provider, "attempt", rv.Attempts, "code", code, "retry_in", backoff.String())
	if err := s.store.RetryRevocation(ctx, rv.ID, s.now().Add(backoff), code); err != nil {
		s.log.Warn("revocation retry not recorded", "id", rv.ID, "err", err)
	}
	return false
}
