package broker

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/socialbroker/broker/storage"
)

// apiError is an error with a public code and description; Cause goes to
// the log only.
type apiError struct {
	Status      int
	Code        Code
	Description string
	Cause       error
	RetryAfter  time.Duration // sent as Retry-After when set
}

func (e *apiError) Error() string {
	if e.Cause != nil {
		return string(e.Code) + ": " + e.Cause.Error()
	}
	return string(e.Code) + ": " + e.Description
}

func (e *apiError) Unwrap() error { return e.Cause }

func errBadRequest(code Code, desc string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Description: desc}
}

// errInvalidGrant is the one answer for every refresh token that cannot be
// used (unknown, expired, revoked, reused, malformed), so that the
// response is no oracle.
func errInvalidGrant(cause error) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: codeInvalidGrant,
		Description: "The refresh token is invalid, expired or revoked.", Cause: cause}
}

// apiHandler is an HTTP handler that returns its error.
type apiHandler func(w http.ResponseWriter, r *http.Request) error

// api adapts an apiHandler: errors become JSON {"error","error_description"}.
func (s *Server) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeAPIError(w, r, err)
		}
	})
}

func (s *Server) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, storage.ErrUnavailable):
		ae = &apiError{Status: http.StatusServiceUnavailable, Code: codeTemporarilyUnavail,
			Description: "The service is temporarily unavailable. Try again shortly.", Cause: err, RetryAfter: retryUnavailable}
	case errors.Is(err, storage.ErrInvalid):
		ae = &apiError{Status: http.StatusBadRequest, Code: codeInvalidRequest,
			Description: "The request carries a value that is not valid text.", Cause: err}
	default:
		ae = &apiError{Status: http.StatusInternalServerError, Code: codeServerError,
			Description: "Something went wrong on our side.", Cause: err}
	}
	level := slog.LevelInfo
	if ae.Status >= 500 {
		level = slog.LevelError
		if ae.Status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
	}
	s.log.Log(r.Context(), level, "request failed", "route", r.Pattern, "code", ae.Code, "status", ae.Status, "err", errString(ae.Cause))
	h := w.Header()
	if ae.Status == http.StatusServiceUnavailable && ae.RetryAfter == 0 {
		ae.RetryAfter = retryUnavailable
	}
	if ae.RetryAfter > 0 {
		setRetryAfter(h, ae.RetryAfter)
	}
	if ae.Code == codeInvalidToken { // the Bearer-protected endpoints (RFC 6750)
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, ae.Status, map[string]string{"error": string(ae.Code), "error_description": ae.Description})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"`+codeServerError+`"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
