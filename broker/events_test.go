package broker_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/socialbroker/broker/broker/brokertest"
	"github.com/socialbroker/broker/internal/app"
)

// whsec is an endpoint secret as the config takes it.
var whsecBytes = []byte("0123456789abcdef0123456789abcdef")
var whsec = "whsec_" + base64.StdEncoding.EncodeToString(whsecBytes)

// received is one request a receiver accepted.
type received struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Event                    struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
}

// receiver is an event endpoint that verifies every request with the
// official Standard Webhooks library and answers with the next status of
// its script (200 once the script is done).
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu       sync.Mutex
	script   []int
	got      []received
	attempts map[string]int
	inFlight map[string]int
	overlap  bool
	delay    time.Duration
	anyTime  bool // the broker's clock was moved: skip the verifier's timestamp tolerance
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(whsec)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, wh: wh, script: script, attempts: map[string]int{}, inFlight: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	rc.attempts[id]++
	rc.inFlight[id]++
	if rc.inFlight[id] > 1 {
		rc.overlap = true
	}
	status := http.StatusOK
	if len(rc.script) > 0 {
		status, rc.script = rc.script[0], rc.script[1:]
	}
	delay, verify := rc.delay, rc.wh.Verify
	if rc.anyTime {
		verify = rc.wh.VerifyIgnoringTimestamp
	}
	rc.mu.Unlock()
	time.Sleep(delay)
	defer func() {
		rc.mu.Lock()
		rc.inFlight[id]--
		rc.mu.Unlock()
	}()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("request %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if err := verify(body, r.Header); err != nil {
		rc.t.Errorf("official verifier refused event %s: %v", id, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if status/100 == 3 {
		http.Redirect(w, r, "/elsewhere", status)
		return
	}
	w.WriteHeader(status)
	if status/100 != 2 {
		return
	}
	rec := received{ID: id, Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature"), Body: body}
	if err := json.Unmarshal(body, &rec.Event); err != nil {
		rc.t.Errorf("event body %s: %v", body, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, rec)
	rc.mu.Unlock()
}

func (rc *receiver) events() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// eventsConfig is the events: block for endpoints at urls.
func eventsConfig(retry string, urls ...string) string {
	var b strings.Builder
	b.WriteString("events:\n  endpoints:\n")
	for _, u := range urls {
		fmt.Fprintf(&b, "    - url: %s\n      secret: %s\n", u, whsec)
	}
	if retry != "" {
		b.WriteString("  retry: " + retry + "\n")
	}
	return b.String()
}

// deliver runs delivery rounds for every endpoint until none has work due.
func deliver(t *testing.T, env *brokertest.Env) {
	t.Helper()
	for range 20 {
		total := 0
		for _, ep := range app.BrokerConfig(env.Config).Events.Endpoints {
			n, err := env.Broker.DeliverEvents(context.Background(), ep)
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
		if total == 0 {
			return
		}
	}
	t.Fatal("deliveries still due after 20 rounds")
}

// auditTypes lists the audit log's types, oldest first.
func auditTypes(t *testing.T, env *brokertest.Env) []string {
	t.Helper()
	rows, err := env.Store.Pool().Query(context.Background(), `SELECT type || COALESCE(':' || detail, '') FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Every account change produces its event, delivered with a signature the
// official verifier accepts, and its audit row; a plain refresh neither.
func TestEventsFromRealActions(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao", "naver"}, Signup: "auto", Extra: eventsConfig("", rc.srv.URL+"/hooks")})
	c := env.Client()
	loginAs(t, env, c, "kakao", "")
	at := currentAccess(t, env, c) // a plain refresh
	for range 3 {
		wantStatus(t, do(t, c, "POST", env.URL+"/auth/token", nil, nil), 200)
	}
	wantStatus(t, link(t, env, c, "naver"), 303)
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/identities/naver", nil, bearer(at)), 204)

	other := env.Client() // a second session, ended by a logout
	loginAs(t, env, other, "kakao", "")
	wantStatus(t, do(t, other, "POST", env.URL+"/auth/logout", nil, nil), 204)
	third := env.Client() // a stolen old token: reuse detection
	loginAs(t, env, third, "kakao", "")
	old := refreshOf(t, env, third)
	wantStatus(t, do(t, third, "POST", env.URL+"/auth/token", nil, nil), 200)
	env.Clock.Advance(time.Minute)
	wantStatus(t, do(t, env.Client(), "POST", env.URL+"/auth/token", nil, withCookie(old)), 401)
	fourth := env.Client()
	loginAs(t, env, fourth, "kakao", "")
	wantStatus(t, do(t, fourth, "POST", env.URL+"/auth/logout?all=true", nil, nil), 204)
	loginAs(t, env, c, "kakao", "")
	at = currentAccess(t, env, c)
	wantStatus(t, do(t, c, "DELETE", env.URL+"/auth/me", nil, bearer(at)), 204)
	deliver(t, env)

	evs := rc.events()
	var got []string
	var userID string
	for _, e := range evs {
		if e.Event.Type == "user.created" {
			userID, _ = e.Event.Data["user_id"].(string)
		}
	}
	for _, e := range evs {
		d := e.Event.Data
		line := e.Event.Type
		for _, k := range []string{"provider", "reason"} {
			if v, ok := d[k]; ok {
				line += " " + k + "=" + fmt.Sprint(v)
			}
		}
		got = append(got, line)
		if e.Event.Type == "user.created" {
			if p, _ := d["profile"].(map[string]any); p["nickname"] != brokertest.Users["kakao"].Nickname {
				t.Errorf("user.created profile = %v", d["profile"])
			}
		}
		if d["user_id"] != userID || userID == "" {
			t.Errorf("%s: user_id %v, want %s", e.Event.Type, d["user_id"], userID)
		}
		if e.Event.Type == "session.revoked" && d["session_id"] == "" {
			t.Errorf("session.revoked without session_id: %s", e.Body)
		}
		if e.Event.Type == "user.deleted" && fmt.Sprint(d["providers"]) != "[kakao]" {
			t.Errorf("user.deleted providers = %v, want [kakao]", d["providers"])
		}
		if _, err := time.Parse(time.RFC3339, e.Event.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", e.Event.Timestamp, err)
		}
		for _, secret := range []string{"refresh", "grant", "secret", "access_token", "kakao-client"} {
			if strings.Contains(string(e.Body), secret) {
				t.Errorf("event body carries %q: %s", secret, e.Body)
			}
		}
	}
	// Order is not promised: compare as sets.
	want := []string{
		"user.created provider=kakao",
		"identity.linked provider=naver",
		"identity.unlinked provider=naver reason=self",
		"session.revoked reason=logout",
		"session.revoked reason=reuse_detected",
		"session.revoked reason=logout_all", // fourth's session
		"session.revoked reason=logout_all", // c's first session
		"session.revoked reason=user_deleted",
		"user.deleted reason=self",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] || !strings.HasPrefix(e.ID, "msg_") {
			t.Fatalf("webhook-id %q repeated or malformed", e.ID)
		}
		ids[e.ID] = true
	}
	// A signature under another secret is refused by the official verifier.
	otherWH, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of 24+ bytes!")))
	h := http.Header{"Webhook-Id": {evs[0].ID}, "Webhook-Timestamp": {evs[0].Timestamp}, "Webhook-Signature": {evs[0].Signature}}
	if err := otherWH.Verify(evs[0].Body, h); err == nil {
		t.Fatal("a verifier with another secret accepted the event")
	}
	if err := rc.wh.Verify(evs[0].Body, h); err != nil {
		t.Fatalf("the right secret refused the event: %v", err)
	}

	audit := strings.Join(auditTypes(t, env), " ")
	for _, w := range []string{"signup", "login", "link", "unlink", "logout", "refresh_reuse", "logout_all:logout_all", "user_deleted:self"} {
		if !strings.Contains(" "+audit+" ", " "+w+" ") {
			t.Errorf("audit log lacks %q: %s", w, audit)
		}
	}
	// Seven sessions were started (four logins, the signup's, the link's
	// none); the refreshes wrote nothing.
	if n := strings.Count(" "+audit+" ", " login "); n != 5 {
		t.Errorf("login audit rows = %d, want 5: %s", n, audit)
	}
}

// Kakao telling the broker that the user left: the user is deleted with
// reason provider, audited with actor provider.
func TestEventsFromProviderUnlink(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Extra: eventsConfig("", rc.srv.URL)})
	loginAs(t, env, env.Client(), "kakao", "")
	form := url.Values{"app_id": {"1"}, "user_id": {brokertest.Users["kakao"].Subject}, "referrer_type": {"UNLINK_FROM_APPS"}}
	wantStatus(t, do(t, &http.Client{}, "POST", env.URL+"/auth/webhooks/kakao/unlink", form, map[string]string{"Authorization": "KakaoAK kakao-admin-key"}), 200)
	deliver(t, env)
	var types []string
	for _, e := range rc.events() {
		types = append(types, e.Event.Type+" "+fmt.Sprint(e.Event.Data["reason"]))
	}
	slices.Sort(types)
	if want := []string{"session.revoked provider", "user.created <nil>", "user.deleted provider"}; !slices.Equal(types, want) {
		t.Fatalf("events %q, want %q", types, want)
	}
	var actor string
	if err := env.Store.Pool().QueryRow(context.Background(), `SELECT actor FROM audit_log WHERE type = 'provider_notification'`).Scan(&actor); err != nil || actor != "provider" {
		t.Fatalf("provider_notification actor = %q, %v; want provider", actor, err)
	}
}

// A receiver that fails, redirects or hangs is retried on schedule with the
// same webhook-id, then given up; an endpoint's filter takes only its types.
func TestEventRetriesAndFilter(t *testing.T) {
	t.Parallel()
	flaky := newReceiver(t, 500, 302, 200) // fails, redirects (not followed), then takes it
	hopeless := newReceiver(t, 503, 503, 503, 503)
	filtered := newReceiver(t)
	flaky.anyTime, hopeless.anyTime, filtered.anyTime = true, true, true
	extra := eventsConfig("", flaky.srv.URL, hopeless.srv.URL) +
		fmt.Sprintf("    - url: %s\n      secret: %s\n      types: [user.deleted]\n", filtered.srv.URL, whsec) +
		"  retry: [1m, 10m]\n"
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Extra: extra})
	env.NewUser(t, "kakao", "retry-me") // user.created
	deliver(t, env)
	if len(flaky.events()) != 0 || flaky.attempts[firstID(flaky)] != 1 {
		t.Fatalf("first attempt: %d delivered, attempts %v", len(flaky.events()), flaky.attempts)
	}
	// Not due again before its delay (1 min, ±10 %).
	env.Clock.Advance(50 * time.Second)
	deliver(t, env)
	if n := flaky.attempts[firstID(flaky)]; n != 1 {
		t.Fatalf("attempts before the delay = %d, want 1", n)
	}
	env.Clock.Advance(20 * time.Second)
	deliver(t, env) // the redirect: a failure
	env.Clock.Advance(11 * time.Minute)
	deliver(t, env) // delivered, same id
	if got := flaky.events(); len(got) != 1 || flaky.attempts[got[0].ID] != 3 {
		t.Fatalf("flaky: delivered %d, attempts %v; want 1 event after 3 attempts with one id", len(got), flaky.attempts)
	}
	// The hopeless endpoint got 1 + 2 retries, then the delivery was given up.
	if n := hopeless.attempts[firstID(hopeless)]; n != 3 {
		t.Fatalf("hopeless attempts = %d, want 3", n)
	}
	var givenUp int
	if err := env.Store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM event_deliveries WHERE given_up_at IS NOT NULL`).Scan(&givenUp); err != nil || givenUp != 1 {
		t.Fatalf("given up = %d, %v; want 1", givenUp, err)
	}
	if !strings.Contains(env.Logs.String(), "delivery given up") {
		t.Fatal("no log line for the given-up delivery")
	}
	// The filtered endpoint saw no user.created.
	if n := len(filtered.attempts); n != 0 {
		t.Fatalf("filtered endpoint got %d events, want 0", n)
	}
}

func firstID(rc *receiver) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id := range rc.attempts {
		return id
	}
	return ""
}

// Two brokers on one database deliver every event exactly once between
// them and never send one at the same time; a broker that dies after
// leasing a batch leaves it to the others once the lease ends.
func TestEventsTwoBrokersAndACrash(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	rc.delay = 5 * time.Millisecond
	rc.anyTime = true
	a := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Extra: eventsConfig("", rc.srv.URL)})
	b := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Extra: eventsConfig("", rc.srv.URL),
		DatabaseURL: a.Config.Database.URL, Clock: a.Clock})
	for i := range 200 {
		a.NewUser(t, "kakao", fmt.Sprint(1000+i))
	}
	var wg sync.WaitGroup
	for _, env := range []*brokertest.Env{a, b, a, b} {
		wg.Go(func() { deliver(t, env) })
	}
	wg.Wait()
	if n := len(rc.events()); n != 200 {
		t.Fatalf("delivered %d, want 200", n)
	}
	for id, n := range rc.attempts {
		if n != 1 {
			t.Fatalf("event %s sent %d times", id, n)
		}
	}
	if rc.overlap {
		t.Fatal("one event was in flight twice at once")
	}

	// A crash: broker a leases the next event and never reports back.
	a.NewUser(t, "kakao", "crash")
	ds, err := a.Store.ClaimDeliveries(context.Background(), rc.srv.URL, a.Clock.Now(), time.Minute, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim = %d, %v", len(ds), err)
	}
	deliver(t, b) // leased: not sent
	if n := len(rc.events()); n != 200 {
		t.Fatalf("delivered %d during the lease, want 200", n)
	}
	a.Clock.Advance(2 * time.Minute)
	deliver(t, b)
	if n := len(rc.events()); n != 201 {
		t.Fatalf("delivered %d after the lease, want 201", n)
	}
}

// An endpoint removed from the config: its pending deliveries are dropped
// with a log line when a broker starts without it; nothing else is lost.
func TestEventEndpointRemoved(t *testing.T) {
	t.Parallel()
	gone := newReceiver(t)
	kept := newReceiver(t)
	a := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Extra: eventsConfig("", gone.srv.URL, kept.srv.URL)})
	a.NewUser(t, "kakao", "1")
	b := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Signup: "auto", Extra: eventsConfig("", kept.srv.URL),
		DatabaseURL: a.Config.Database.URL})
	if !strings.Contains(b.Logs.String(), "pending deliveries dropped") {
		t.Fatalf("no log line for the dropped deliveries: %s", b.Logs.String())
	}
	deliver(t, b)
	if len(gone.events()) != 0 || len(kept.events()) != 1 {
		t.Fatalf("gone got %d, kept got %d; want 0 and 1", len(gone.events()), len(kept.events()))
	}
}
