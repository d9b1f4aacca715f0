package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/socialbroker/broker/broker/keys"
	"github.com/socialbroker/broker/storage"
)

const (
	grantRefresh       = "refresh_token"
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	maxFormBytes       = 64 << 10
)

type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// parseForm reads a bounded urlencoded body. Query parameters are never
// merged in: tokens in URLs end up in logs and histories.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeInvalidRequest, Description: "The request body is too large."}
		}
		return errBadRequest(codeInvalidRequest, "The request body could not be parsed.")
	}
	return nil
}

// token is POST /auth/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkOrigin(r); err != nil {
		return err
	}
	if q := r.URL.Query(); q.Has("refresh_token") || q.Has("subject_token") || q.Has("code") || q.Has("code_verifier") {
		return errBadRequest(codeInvalidRequest, "Tokens are not accepted in the URL.")
	}
	if err := parseForm(w, r); err != nil {
		return err
	}
	for _, vals := range r.PostForm { // RFC 6749 §3.2: parameters must not repeat
		if len(vals) > 1 {
			return errBadRequest(codeInvalidRequest, "Send each parameter once.")
		}
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "":
		return s.refreshGrant(w, r, false)
	case grantRefresh:
		return s.refreshGrant(w, r, true)
	case grantTokenExchange:
		return s.tokenExchange(w, r)
	case grantAuthorizationCode:
		return s.codeGrant(w, r)
	default:
		return errBadRequest(codeUnsupportedGrantType, "This grant type is not supported.")
	}
}

// refreshGrant rotates the presented refresh token. With form=true the
// token comes from (and the new one goes into) the body; otherwise the
// cookie.
func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, form bool) error {
	var raw string
	if form {
		raw = r.PostForm.Get("refresh_token") // never repeated: token refuses repeats
	} else {
		vals := cookieValues(r, refreshCookie)
		if len(vals) > 1 {
			s.clearRefreshCookie(w)
			return errBadRequest(codeInvalidRequest, "Send one refresh token.")
		}
		if len(vals) == 1 {
			raw = vals[0]
		}
	}
	res, err := s.rotate(r.Context(), raw)
	if err != nil {
		// A deletion removes whatever refresh cookie the browser holds when
		// this answer lands, not the value this request carried: another
		// tab may have signed in meanwhile. Delete only a cookie that was
		// presented and refused. Every such refusal means that no
		// generation of the presented token's session is live any more (a
		// live session's older generation is a reuse, which revokes it), so
		// a value the browser got from that session since is dead too.
		// Without a cookie there is nothing to delete, only a newer login
		// to lose.
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !form && raw != "" {
			s.clearRefreshCookie(w)
		}
		return err
	}
	resp := tokenResponse{AccessToken: res.access, TokenType: "Bearer", ExpiresIn: int(s.cfg.Tokens.AccessTTL / time.Second)}
	if form {
		resp.RefreshToken = res.refresh
	} else {
		s.setRefreshCookie(w, res.refresh, res.expires)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type issued struct {
	access, refresh string
	expires         time.Time
}

// rotate exchanges a refresh token for a new access token and its child.
func (s *Server) rotate(ctx context.Context, raw string) (issued, error) {
	if raw == "" {
		s.countRefresh("missing")
		return issued{}, errInvalidGrant(errors.New("no refresh token"))
	}
	tok, err := decodeToken(raw)
	if err != nil {
		s.countRefresh("malformed")
		return issued{}, errInvalidGrant(err)
	}
	child := s.refresh.childOf(tok)
	rot, err := s.store.Rotate(ctx, storage.RotateParams{
		Hash: hashToken(tok), Child: hashToken(child), Now: s.now(),
		Grace: s.cfg.Tokens.ReuseGrace, Idle: s.cfg.Tokens.RefreshIdleTTL,
		Profile: len(s.cfg.Tokens.ProfileClaims) > 0,
	})
	if err != nil {
		return issued{}, err
	}
	s.countRefresh(string(rot.Outcome))
	if rot.Outcome == storage.Reused {
		s.log.WarnContext(ctx, "refresh token reused after its grace: session revoked", "sid", rot.SessionID)
	}
	if !rot.Ok() {
		return issued{}, errInvalidGrant(errors.New("refresh " + string(rot.Outcome)))
	}
	access, err := s.issueAccessToken(rot.UserID, rot.SessionID, rot.IDP, rot.Profile)
	if err != nil {
		return issued{}, signingError(err)
	}
	return issued{access: access, refresh: encodeToken(child), expires: rot.ExpiresAt}, nil
}

func signingError(err error) error {
	if errors.Is(err, keys.ErrNoKey) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeTemporarilyUnavail,
			Description: "The service is temporarily unavailable. Try again shortly.", Cause: err}
	}
	return err
}

// startSession creates a session of kind (web or native) for a user and
// its first refresh token.
func (s *Server) startSession(ctx context.Context, userID, idp, kind string) (issued, storage.Session, error) {
	tok := newRefreshToken()
	now := s.now()
	sess, err := s.store.CreateSession(ctx, storage.NewSession{
		UserID: userID, IDP: idp, Kind: kind, TokenHash: hashToken(tok), Now: now,
		ExpiresAt: now.Add(s.cfg.Tokens.RefreshTTL),
	})
	if err != nil {
		return issued{}, storage.Session{}, err
	}
	return issued{refresh: encodeToken(tok), expires: sess.ExpiresAt}, sess, nil
}
