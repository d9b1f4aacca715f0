package verify

import (
	"context"
	"net/http"
	"strings"
)

type claimsKey struct{}

// ClaimsFrom returns the claims that Middleware put in a request's
// context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Middleware lets a request through to next only with a valid access
// token in its Authorization header ("Bearer <token>"; tokens in the query
// or the body are not looked at), and puts the token's claims in the
// request's context (read them with ClaimsFrom). Otherwise it answers, as
// RFC 6750 §3 says:
//
//   - no Authorization header, another scheme than Bearer, or Bearer
//     without a token: 401 with
//     WWW-Authenticate: Bearer (no error code: the client did not try);
//   - a token that Verify refuses: 401 with
//     WWW-Authenticate: Bearer error="invalid_token";
//   - more than one Authorization header: 400 with
//     WWW-Authenticate: Bearer error="invalid_request".
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths := r.Header.Values("Authorization")
		if len(auths) > 1 {
			v.refuse(w, http.StatusBadRequest, "invalid_request")
			return
		}
		if len(auths) == 0 {
			v.refuse(w, http.StatusUnauthorized, "")
			return
		}
		scheme, token, _ := strings.Cut(auths[0], " ")
		if !strings.EqualFold(scheme, "Bearer") {
			v.refuse(w, http.StatusUnauthorized, "")
			return
		}
		token = strings.TrimLeft(token, " ")
		if token == "" {
			v.refuse(w, http.StatusUnauthorized, "")
			return
		}
		claims, err := v.Verify(r.Context(), token)
		if err != nil {
			v.refuse(w, http.StatusUnauthorized, "invalid_token")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

// refuse answers status with a Bearer challenge carrying code, if any.
func (v *Verifier) refuse(w http.ResponseWriter, status int, code string) {
	var params []string
	if v.realm != "" {
		params = append(params, `realm="`+quoteEscape(v.realm)+`"`)
	}
	if code != "" {
		params = append(params, `error="`+code+`"`)
	}
	challenge := "Bearer"
	if len(params) > 0 {
		challenge += " " + strings.Join(params, ", ")
	}
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	msg := "missing bearer token"
	switch code {
	case "invalid_token":
		msg = "invalid access token"
	case "invalid_request":
		msg = "more than one Authorization header"
	}
	_, _ = w.Write([]byte(msg + "\n"))
}

// quoteEscape escapes s for an HTTP quoted-string.
func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
