package broker_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
)

// logLines decodes the JSON log lines written so far.
func logLines(t *testing.T, env *brokertest.Env) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(env.Logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// Every request gets an id, echoed in the answer and carried by each of
// its log lines; an X-Request-Id counts only from a trusted proxy. Each
// request writes one access log line without its query string.
func TestRequestIDsAndAccessLog(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto",
		Extra: "limits:\n  trusted_proxies: [127.0.0.1]\n"})
	c := env.Client()
	r := do(t, c, "GET", env.URL+"/auth/login/kakao?return_to=https://app.example.com/secret-path", nil, nil)
	id := r.Header.Get("X-Request-Id")
	if len(id) < 16 {
		t.Fatalf("X-Request-Id = %q", id)
	}
	r = do(t, c, "GET", approve(t, env, "kakao", r.Header.Get("Location")), nil, map[string]string{"X-Request-Id": "edge-42"})
	wantStatus(t, r, 303)
	if got := r.Header.Get("X-Request-Id"); got != "edge-42" {
		t.Fatalf("a trusted proxy's id: echoed %q, want edge-42", got)
	}
	r = do(t, c, "GET", env.URL+"/healthz", nil, map[string]string{"X-Request-Id": "bad id\twith tab"})
	if got := r.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, "bad") {
		t.Fatalf("a malformed id was echoed: %q", got)
	}

	var access, login int
	for _, l := range logLines(t, env) {
		if l["request_id"] == "edge-42" {
			switch l["msg"] {
			case "http request":
				access++
				if l["route"] != "GET /auth/callback/{provider}" || l["status"] != float64(303) || l["method"] != "GET" {
					t.Errorf("access line = %v", l)
				}
				if _, ok := l["bytes"]; !ok {
					t.Errorf("access line without bytes: %v", l)
				}
			case "signup":
				login++
				if l["provider"] != "kakao" || l["user_id"] == "" {
					t.Errorf("signup line = %v", l)
				}
			}
		}
	}
	if access != 1 || login != 1 {
		t.Fatalf("lines of request edge-42: %d access, %d signup; want 1 and 1\n%s", access, login, env.Logs.String())
	}
	if strings.Contains(env.Logs.String(), "secret-path") || strings.Contains(env.Logs.String(), "code=") {
		t.Fatal("a query string reached the log")
	}

	// From an untrusted peer the header is ignored.
	plain := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	r = do(t, &http.Client{}, "GET", plain.URL+"/healthz", nil, map[string]string{"X-Request-Id": "forged-1"})
	if got := r.Header.Get("X-Request-Id"); got == "forged-1" || got == "" {
		t.Fatalf("untrusted X-Request-Id: echoed %q", got)
	}
}
