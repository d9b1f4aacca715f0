package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
)

// Every request has an id: the X-Request-Id a trusted proxy sent, or one
// the broker makes. It is echoed in the answer and carried by every log
// line written for the request (through the request's context).

type requestIDKey struct{}

// requestID returns the request's id for its answer and its log lines.
func (s *Server) requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && validRequestID(id) && s.fromTrustedProxy(r) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fromTrustedProxy reports whether the TCP peer is in limits.trusted_proxies.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if len(s.cfg.Limits.TrustedProxies) == 0 {
		return false
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = strings.Trim(host[:i], "[]")
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.Limits.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// validRequestID: up to 128 characters of [A-Za-z0-9._:-], so an id is safe
// to echo and to log.
func validRequestID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// requestIDHandler adds the request id of a log call's context to the
// record: every line a request writes with a *Context call carries it.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
