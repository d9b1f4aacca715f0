package broker

import "net/http"

// Drain starts the server's drain: /readyz answers 503 from now on, so that
// load balancers stop sending new requests here, and every response carries
// Connection: close, so that no idle keep-alive connection (a balancer's
// pooled one, a client's) is left to be reused when the listener closes.
// Everything else keeps being served. serve calls it on SIGTERM, waits
// shutdown.drain, then closes the listener and finishes in-flight requests.
// It cannot be undone.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// closeWhenDraining asks the client to close the connection after each
// response once the server drains.
func (s *Server) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
