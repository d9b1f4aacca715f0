package broker

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// pageError is a failure shown to a browser as the error page.
type pageError struct {
	Status int
	Code   string // a code of the error page's catalogue
	Cause  error
}

func (e *pageError) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Cause.Error()
	}
	return e.Code
}

func (e *pageError) Unwrap() error { return e.Cause }

// pageHandler is a browser endpoint returning its error.
type pageHandler func(w http.ResponseWriter, r *http.Request) error

// page adapts a pageHandler: errors become the HTML error page, in the
// request's language, with a stable code and no internals.
func (s *Server) page(h pageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var pe *pageError
		var ae *apiError
		switch {
		case errors.As(err, &pe):
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			pe = &pageError{Status: ae.Status, Code: "rate_limited"}
		case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
			pe = &pageError{Status: ae.Status, Code: "invalid_request", Cause: ae}
		case errors.Is(err, storage.ErrUnavailable):
			pe = &pageError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Cause: err}
			w.Header().Set("Retry-After", "5")
		case errors.Is(err, storage.ErrInvalid):
			pe = &pageError{Status: http.StatusBadRequest, Code: "invalid_request", Cause: err}
		default:
			pe = &pageError{Status: http.StatusInternalServerError, Code: "server_error", Cause: err}
		}
		level := slog.LevelInfo
		switch {
		case pe.Status == http.StatusServiceUnavailable:
			level = slog.LevelWarn
		case pe.Status >= 500 && pe.Code == "server_error":
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "page failed", "route", r.Pattern, "code", pe.Code, "status", pe.Status, "err", errString(pe.Cause))
		w.Header().Set("Cache-Control", "no-store")
		s.pages.Error(w, r, pe.Status, pe.Code)
	})
}

// providerPageError maps a provider failure onto the error page.
func providerPageError(err error) *pageError {
	code := providers.ErrorCode(err)
	status := http.StatusBadGateway
	switch code {
	case providers.CodeAccessDenied:
		status = http.StatusForbidden
	case providers.CodeInvalidGrant, providers.CodeInvalidIDToken:
		status = http.StatusBadRequest
	case providers.CodeProviderTimeout:
		status = http.StatusGatewayTimeout
	}
	return &pageError{Status: status, Code: code, Cause: err}
}
