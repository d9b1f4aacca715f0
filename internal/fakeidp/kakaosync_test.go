package fakeidp

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

var syncTerms = []ServiceTerm{
	{Tag: "service", Required: true},
	{Tag: "privacy", Required: true},
	{Tag: "marketing", Revocable: true},
}

// syncLogin runs an authorize request with service_terms (when not "-"),
// answers the consent page with tags (nil: tick all), and returns the
// access token.
func syncLogin(t *testing.T, e *Emulator, serviceTerms string, tags []string) (string, error) {
	t.Helper()
	cfg := config(e)
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("scope", "profile_nickname")}
	if serviceTerms != "-" {
		opts = append(opts, oauth2.SetAuthURLParam("service_terms", serviceTerms))
	}
	authURL := cfg.AuthCodeURL("st", opts...)
	var loc *url.URL
	var err error
	if tags == nil {
		loc, err = e.Approve(ctxT(t), authURL)
	} else {
		loc, err = e.ApproveTerms(ctxT(t), authURL, tags)
	}
	if err != nil {
		return "", err
	}
	tok, err := cfg.Exchange(ctxT(t), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken, nil
}

func TestKakaoSyncConsentAndTermsAPI(t *testing.T) {
	e := start(t, Options{Kind: Kakao, User: kakaoUser(), AdminKey: "admin-key-1", ServiceTerms: syncTerms})
	api := e.URL() + kakaoServiceTerms

	// The consent page shows the requested terms; unknown tags show nothing.
	page := send(t, "GET", config(e).AuthCodeURL("st", oauth2.SetAuthURLParam("service_terms", "service,marketing,nope")), nil, nil)
	body := string(page.body)
	if !strings.Contains(body, `name="service_terms" value="service" data-required="true"`) ||
		!strings.Contains(body, `name="service_terms" value="marketing"`) ||
		strings.Contains(body, `value="privacy"`) || strings.Contains(body, `value="nope"`) {
		t.Errorf("consent page terms:\n%s", body)
	}

	// A required term left unticked: Kakao's screen does not go on.
	_, err := syncLogin(t, e, "service,privacy,marketing", []string{"service"})
	var ae *AuthorizeError
	if !errors.As(err, &ae) || ae.Code != "required_terms" {
		t.Fatalf("consent without privacy: %v", err)
	}

	// The required ones and not marketing.
	at, err := syncLogin(t, e, "service,privacy,marketing", []string{"service", "privacy"})
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, "GET", api, nil, bearer(at))
	m := r.json(t)
	if r.status != 200 || m["id"] != json.Number("9007199254740993") {
		t.Fatalf("service terms = %d %s", r.status, r.body)
	}
	terms, _ := m["service_terms"].([]any)
	if len(terms) != 2 {
		t.Fatalf("agreed terms = %s", r.body)
	}
	for _, it := range terms {
		it := it.(map[string]any)
		if it["agreed"] != true || it["required"] != true || it["revocable"] != false || it["agreed_at"] == nil {
			t.Errorf("term %v", it)
		}
	}
	// Every registered term with result=app_service_terms; tags narrows.
	r = send(t, "GET", api+"?result=app_service_terms", nil, bearer(at))
	if !strings.Contains(string(r.body), `{"agreed":false,"required":false,"revocable":true,"tag":"marketing"}`) {
		t.Errorf("app_service_terms = %s", r.body)
	}
	r = send(t, "GET", api+"?result=app_service_terms&tags=marketing", nil, bearer(at))
	if !strings.Contains(string(r.body), `"service_terms":[{"agreed":false,"required":false,"revocable":true,"tag":"marketing"}]`) {
		t.Errorf("tags=marketing: %s", r.body)
	}
	if got := strings.Join(e.AgreedTerms("9007199254740993"), ","); got != "privacy,service" {
		t.Errorf("AgreedTerms = %s", got)
	}

	// Agreed terms are not asked again; the optional one still is.
	page = send(t, "GET", config(e).AuthCodeURL("st", oauth2.SetAuthURLParam("service_terms", "service,privacy,marketing")), nil, nil)
	if strings.Contains(string(page.body), `value="service"`) || !strings.Contains(string(page.body), `value="marketing"`) {
		t.Errorf("second consent page:\n%s", page.body)
	}

	// The admin key, and its refusals; bad tokens; bad parameters.
	r = send(t, "GET", api+"?target_id_type=user_id&target_id=9007199254740993", nil, map[string]string{"Authorization": "KakaoAK admin-key-1"})
	if r.status != 200 || !strings.Contains(string(r.body), `"tag":"privacy"`) {
		t.Errorf("admin key = %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		target string
		header map[string]string
		status int
		body   string
	}{
		{api, bearer("not-a-token"), 401, `{"code":-401,"msg":"this access token does not exist"}`},
		{api, nil, 401, `{"code":-401,"msg":"this access token does not exist"}`},
		{api + "?target_id_type=user_id&target_id=1", map[string]string{"Authorization": "KakaoAK wrong"}, 401, `{"code":-401,"msg":"wrong appKey type or the admin key does not exist"}`},
		{api, map[string]string{"Authorization": "KakaoAK admin-key-1"}, 400, `{"code":-2,"msg":"target_id_type must be user_id and target_id a user id"}`},
		{api + "?result=everything", bearer(at), 400, `{"code":-2,"msg":"invalid result: everything"}`},
	} {
		if r := send(t, "GET", c.target, nil, c.header); r.status != c.status || string(r.body) != c.body {
			t.Errorf("%s %v: %d %s, want %d %s", c.target, c.header, r.status, r.body, c.status, c.body)
		}
	}
	if r := send(t, "POST", api, nil, bearer(at)); r.status != 405 {
		t.Errorf("POST = %d", r.status)
	}

	// Faults.
	e.SetFaults(Faults{TermsStatus: 500})
	if r := send(t, "GET", api, nil, bearer(at)); r.status != 500 {
		t.Errorf("TermsStatus 500: %d", r.status)
	}
	e.SetFaults(Faults{TermsStatus: 403})
	if r := send(t, "GET", api, nil, bearer(at)); r.status != 403 || string(r.body) != `{"code":-1,"msg":"Forbidden"}` {
		t.Errorf("TermsStatus 403: %d %s", r.status, r.body)
	}
	e.SetFaults(Faults{})

	// Unlink forgets the agreements.
	r = send(t, "POST", e.Endpoints().RevokeURL, url.Values{"target_id_type": {"user_id"}, "target_id": {"9007199254740993"}},
		map[string]string{"Authorization": "KakaoAK admin-key-1"})
	if r.status != 200 || len(e.AgreedTerms("9007199254740993")) != 0 {
		t.Errorf("after unlink: %d %v", r.status, e.AgreedTerms("9007199254740993"))
	}

	// Without service_terms, every registered term; Approve ticks them all.
	if _, err := syncLogin(t, e, "-", nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.AgreedTerms("9007199254740993"), ","); got != "marketing,privacy,service" {
		t.Errorf("after Approve: %s", got)
	}
}

func TestKakaoSyncProviderConfig(t *testing.T) {
	e := start(t, Options{Kind: Kakao, ServiceTerms: syncTerms})
	if got, _ := e.ProviderConfig("kakao", false)["service_terms"].([]string); strings.Join(got, ",") != "service,privacy,marketing" {
		t.Errorf("service_terms = %v", got)
	}
	if _, ok := start(t, Options{Kind: Kakao}).ProviderConfig("kakao", false)["service_terms"]; ok {
		t.Error("service_terms without Kakao Sync terms")
	}
}
