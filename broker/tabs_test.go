package broker_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/socialbroker/broker/broker/brokertest"
)

// browserJar is the one refresh cookie that every tab of a browser shares:
// each answer's Set-Cookie replaces or deletes it as the answer lands,
// whatever value the request carried.
type browserJar struct {
	mu    sync.Mutex
	value string
}

func (j *browserJar) get() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.value
}

// land applies an answer's refresh cookie and reports whether it deleted
// the cookie.
func (j *browserJar) land(r response) (deleted bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	ck := r.cookie("refresh_token")
	switch {
	case ck == nil:
		return false
	case ck.MaxAge < 0 || ck.Value == "":
		j.value = ""
		return true
	default:
		j.value = ck.Value
		return false
	}
}

// refreshFrom posts the jar's current cookie (none when it is empty), as a
// tab's fetch('/auth/token', {credentials: 'include'}) does.
func refreshFrom(t *testing.T, env *brokertest.Env, sent string) response {
	t.Helper()
	var hdr map[string]string
	if sent != "" {
		hdr = withCookie(sent)
	}
	return do(t, &http.Client{}, "POST", env.URL+"/auth/token", nil, hdr)
}

// Tabs that refresh at the same moment all present the same cookie: every
// answer carries the same child, none deletes the cookie, in whatever order
// the answers land; and a loser whose answer lands after the winner's (a
// replay of the parent within reuse_grace) sets that same child again.
// Round after round, the cookie the browser ends up with always works and
// the session is never taken for stolen.
func TestTabsRacingRefreshKeepWinnerCookie(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	first, sess := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	jar := &browserJar{value: first}
	const tabs, rounds = 5, 8
	for round := 0; round < rounds; round++ {
		parent := jar.get()
		answers := make(chan response, tabs)
		var wg sync.WaitGroup
		for i := 0; i < tabs; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers <- refreshFrom(t, env, parent)
			}()
		}
		wg.Wait()
		close(answers)
		children := map[string]bool{}
		for r := range answers { // in the order they completed
			if r.StatusCode != 200 {
				t.Fatalf("round %d: a racing tab got %d %s", round, r.StatusCode, r.body)
			}
			if jar.land(r) {
				t.Fatalf("round %d: a racing tab's answer deleted the refresh cookie: %v", round, r.Header.Values("Set-Cookie"))
			}
			children[jar.get()] = true
		}
		if len(children) != 1 {
			t.Fatalf("round %d: racing tabs got %d different children, want 1", round, len(children))
		}
		child := jar.get()

		// A straggler: its request carried the parent, its answer lands
		// after the winner's cookie is in the jar.
		env.Clock.Advance(2 * time.Second) // within reuse_grace (10s)
		late := refreshFrom(t, env, parent)
		wantStatus(t, late, 200)
		if jar.land(late) || jar.get() != child {
			t.Fatalf("round %d: the straggler's answer changed the winner's cookie to %v", round, late.Header.Values("Set-Cookie"))
		}
	}
	// The cookie the browser holds works, and nothing was taken for theft.
	final := refreshFrom(t, env, jar.get())
	wantStatus(t, final, 200)
	if s, err := env.Store.Session(context.Background(), sess.ID); err != nil || s.RevokedAt != nil {
		t.Fatalf("session after racing refreshes: revoked %v (%v)", s.RevokedAt, err)
	}
}

// A signed-out tab asking for a token (no cookie to send) while another
// tab signs in: its 401 must not delete the cookie the sign-in just set.
// The request carried nothing, so a deletion could only ever hit a newer
// cookie than it saw.
func TestSignedOutTabKeepsNewSignIn(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{})
	uid := env.NewUser(t, "kakao", "1")
	jar := &browserJar{}

	// Both tabs start signed out. Tab A's request leaves with no cookie.
	sent := jar.get()
	// Tab B finishes a sign-in: the callback's answer sets a cookie.
	tok, _ := env.NewSession(t, uid)
	jar.value = tok
	// Tab A's answer lands now.
	r := refreshFrom(t, env, sent)
	wantStatus(t, r, 401)
	if v := r.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("a refresh without a cookie answered Set-Cookie %v", v)
	}
	if jar.land(r) {
		t.Fatal("the signed-out tab's answer deleted the new sign-in's cookie")
	}
	wantStatus(t, refreshFrom(t, env, jar.get()), 200)

	// The same, many times at once, against a tab refreshing the live
	// session: none of the signed-out answers carries a cookie.
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := refreshFrom(t, env, "")
			if r.StatusCode != 401 || len(r.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("refresh without a cookie: %d, Set-Cookie %v", r.StatusCode, r.Header.Values("Set-Cookie"))
			}
		}()
	}
	for i := 0; i < 3; i++ {
		r := refreshFrom(t, env, jar.get())
		wantStatus(t, r, 200)
		if jar.land(r) {
			t.Fatal("a live refresh deleted its own cookie")
		}
	}
	wg.Wait()
	wantStatus(t, refreshFrom(t, env, jar.get()), 200)
}

// A presented cookie that is refused is still deleted, and that is safe:
// every such refusal leaves no generation of its session live (an older
// generation of a live session is a reuse, which revokes the session), so
// the cookie a winner got from that session is dead already.
func TestRefusedCookieDeletionOnlyHitsDeadSessions(t *testing.T) {
	t.Parallel()
	env := brokertest.New(t, brokertest.Options{ReuseGrace: 2 * time.Second})
	first, _ := env.NewSession(t, env.NewUser(t, "kakao", "1"))
	jar := &browserJar{value: first}
	win := refreshFrom(t, env, first)
	wantStatus(t, win, 200)
	jar.land(win)
	winner := jar.get()

	env.Clock.Advance(3 * time.Second) // past reuse_grace: the straggler is a reuse
	late := refreshFrom(t, env, first)
	wantStatus(t, late, 401)
	if !jar.land(late) {
		t.Fatalf("a refused presented cookie was kept: Set-Cookie %v", late.Header.Values("Set-Cookie"))
	}
	// What the deletion removed was dead already.
	wantStatus(t, refreshFrom(t, env, winner), 401)

	// Unknown and malformed cookies name no live session either.
	unknown, _ := brokertestToken()
	for name, v := range map[string]string{"unknown": unknown, "malformed": "not-a-token"} {
		r := refreshFrom(t, env, v)
		wantStatus(t, r, 401)
		if ck := r.cookie("refresh_token"); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("%s cookie: Set-Cookie %v, want a deletion", name, r.Header.Values("Set-Cookie"))
		}
	}
}
