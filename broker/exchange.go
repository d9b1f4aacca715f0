package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/socialbroker/broker/internal/compact"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// maxExchangedIDTokenLife bounds how far in the future an exchanged
// id_token's exp may lie (Google's live 1 h, Kakao's 12 h).
const maxExchangedIDTokenLife = 24 * time.Hour

const (
	tokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// tokenExchange is the RFC 8693 grant of POST /auth/token for native apps:
// an id_token a provider SDK gave the app, verified exactly like a
// callback's, becomes a session.
func (s *Server) tokenExchange(w http.ResponseWriter, r *http.Request) error {
	f := r.PostForm
	if f.Get("subject_token_type") != tokenTypeIDToken || f.Get("subject_token") == "" {
		return errBadRequest("invalid_request", "subject_token must be an id_token (subject_token_type "+tokenTypeIDToken+").")
	}
	p, ok := s.providers.Get(f.Get("provider"))
	if !ok {
		return errBadRequest("invalid_request", "Unknown provider.")
	}
	v, ok := p.(providers.IDTokenVerifier)
	if !ok {
		return errBadRequest("invalid_request", "This provider does not issue id_tokens.")
	}
	raw := f.Get("subject_token")
	parts, err := compact.Decode(raw)
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The id_token is invalid.", Cause: err}
	}
	ctx, cancel := context.WithTimeout(r.Context(), providerDeadline)
	defer cancel()
	id, err := v.VerifyIDToken(ctx, raw, f.Get("nonce"))
	if err == nil {
		id, err = providers.Clean(id)
	}
	if err != nil {
		code := providers.ErrorCode(err)
		if code == providers.CodeProviderError || code == providers.CodeProviderTimeout {
			return &apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "The provider could not be reached. Try again shortly.", Cause: err}
		}
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The id_token is invalid.", Cause: err}
	}
	id.Provider = p.Info().Name
	// The token is remembered by its verified claims, not its spelling, until
	// its own exp; one living longer than any provider issues is refused, so
	// the memory is bounded.
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(parts.Payload, &claims); err != nil {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The id_token is invalid.", Cause: err}
	}
	exp := time.Unix(claims.Exp, 0)
	if exp.Sub(s.now()) > maxExchangedIDTokenLife {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The id_token is invalid.", Cause: errors.New("id_token lives longer than a day")}
	}
	sum := sha256.Sum256(append([]byte(id.Provider+"\x00"), parts.Payload...))
	err = s.store.UseOnce(r.Context(), storage.Once{Kind: "id_token", Hash: sum[:], Expires: exp})
	if errors.Is(err, storage.ErrConflict) {
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The id_token is invalid.", Cause: errors.New("id_token replayed")}
	}
	if err != nil {
		return err
	}
	grantEnc, err := s.nativeGrant(ctx, p, &id, f)
	if err != nil {
		return err
	}
	userID, err := s.store.IdentityUser(r.Context(), id.Provider, id.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		if s.cfg.Signup.Mode != "auto" {
			return &apiError{Status: http.StatusForbidden, Code: "signup_required",
				Description: "This account has not signed up yet: complete the signup in the browser first."}
		}
		userID, err = s.createUser(r.Context(), profileOf(id), storage.Identity{Provider: id.Provider, Subject: id.Subject, Profile: profileOf(id), GrantEnc: grantEnc}, nil)
	} else if err == nil && grantEnc != nil {
		err = s.store.SetIdentityGrant(r.Context(), id.Provider, id.Subject, grantEnc)
	}
	if err != nil {
		return err
	}
	iss, sess, err := s.startSession(r.Context(), userID, id.Provider, "native")
	if errors.Is(err, storage.ErrDisabled) {
		return &apiError{Status: http.StatusForbidden, Code: "user_disabled", Description: "This account is disabled."}
	}
	if err != nil {
		return err
	}
	profile, err := s.profileForClaims(r.Context(), userID)
	if err != nil {
		return err
	}
	access, err := s.issueAccessToken(userID, sess.ID, id.Provider, profile)
	if err != nil {
		return signingError(err)
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.cfg.Tokens.AccessTTL / time.Second),
		RefreshToken: iss.refresh, IssuedTokenType: tokenTypeAccessToken,
	})
	return nil
}

// profileForClaims is the user's profile when access tokens carry profile
// claims (nil otherwise, without a query).
func (s *Server) profileForClaims(ctx context.Context, userID string) (map[string]string, error) {
	if len(s.cfg.Tokens.ProfileClaims) == 0 {
		return nil, nil
	}
	u, _, err := s.store.User(ctx, userID)
	return u.Profile, err
}
