package broker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// pageError is a failure shown to a browser as the error page.
type pageError struct {
	Status int
	Code   Code // a code of the error page's catalogue
	Cause  error
}

func (e *pageError) Error() string {
	if e.Cause != nil {
		return string(e.Code) + ": " + e.Cause.Error()
	}
	return string(e.Code)
}

func (e *pageError) Unwrap() error { return e.Cause }

// pageHandler is a browser endpoint returning its error.
type pageHandler func(w http.ResponseWriter, r *http.Request) error

// page adapts a pageHandler: errors become the HTML error page, in the
// request's language, with a stable code and no internals.
func (s *Server) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.RememberLang(w, r, s.cfg.Cookies.Secure)
		ps := &pageState{}
		r = r.WithContext(context.WithValue(r.Context(), pageStateKey{}, ps))
		err := h(w, r)
		if err == nil {
			return
		}
		var pe *pageError
		var ae *apiError
		switch {
		case errors.As(err, &pe):
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			pe = &pageError{Status: ae.Status, Code: codeRateLimited}
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			pe = &pageError{Status: ae.Status, Code: codeInvalidRequest, Cause: ae}
		case errors.Is(err, storage.ErrUnavailable):
			pe = &pageError{Status: http.StatusServiceUnavailable, Code: codeTemporarilyUnavail, Cause: err}
			setRetryAfter(w.Header(), retryUnavailable)
		case errors.Is(err, storage.ErrInvalid):
			pe = &pageError{Status: http.StatusBadRequest, Code: codeInvalidRequest, Cause: err}
		default:
			pe = &pageError{Status: http.StatusInternalServerError, Code: codeServerError, Cause: err}
		}
		level := slog.LevelInfo
		switch {
		case pe.Status == http.StatusServiceUnavailable:
			level = slog.LevelWarn
		case pe.Status >= 500 && pe.Code == codeServerError:
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "page failed", "route", r.Pattern, "code", pe.Code, "status", pe.Status, "err", errString(pe.Cause))
		w.Header().Set("Cache-Control", "no-store")
		s.pages.ErrorReturning(w, r, pe.Status, string(pe.Code), ps.returnTo)
	})
}

// pageState is what a page handler learns that its error page may use.
type pageState struct {
	returnTo string // a validated return_to: the error page's "back to sign in" keeps it
}

type pageStateKey struct{}

// keepReturnTo makes the request's error page, if any, lead back to the
// login with returnTo (validated by the caller).
func keepReturnTo(r *http.Request, returnTo string) {
	if ps, ok := r.Context().Value(pageStateKey{}).(*pageState); ok {
		ps.returnTo = returnTo
	}
}

// providerPageError maps a provider failure onto the error page.
func providerPageError(err error) *pageError {
	code := Code(providers.ErrorCode(err))
	status := http.StatusBadGateway
	switch code {
	case codeAccessDenied:
		status = http.StatusForbidden
	case codeInvalidGrant, codeInvalidIDToken:
		status = http.StatusBadRequest
	case codeProviderTimeout:
		status = http.StatusGatewayTimeout
	}
	return &pageError{Status: status, Code: code, Cause: err}
}
