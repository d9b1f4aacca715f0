package providers

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestKakaoServiceTermsOnAuthorize(t *testing.T) {
	type m = map[string]any
	r, err := NewRegistry([]Config{
		ConfigOf(m{"name": "kakao", "type": "kakao", "client_id": "k", "service_terms": []string{"service", "privacy"}}),
		ConfigOf(m{"name": "plain", "type": "kakao", "client_id": "k2"}),
	}, Options{RedirectBase: "https://auth.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"kakao": "service,privacy", "plain": ""} {
		p, _ := r.Get(name)
		raw, err := p.AuthCodeURL(context.Background(), AuthOptions{State: "s"})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(raw)
		if got := u.Query().Get("service_terms"); got != want || u.Query().Has("service_terms") != (want != "") {
			t.Errorf("%s: service_terms = %q, want %q", name, got, want)
		}
		tr := p.(TermsReader)
		if got := strings.Join(tr.TermsTags(), ","); got != want {
			t.Errorf("%s: TermsTags = %q", name, got)
		}
	}

	err = Validate([]Config{ConfigOf(m{"name": "kakao", "type": "kakao", "client_id": "k", "service_terms": []string{"ok", "Not OK", "ok"}})}, "https://auth.example.com")
	for _, want := range []string{`providers[0].service_terms[1]: must be 1-64 of a-z, 0-9 and _, got "Not OK"`, `providers[0].service_terms[2]: duplicate tag "ok"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	err = Validate([]Config{ConfigOf(m{"name": "g", "type": "google", "client_id": "k", "service_terms": []string{"ok"}})}, "https://auth.example.com")
	if err == nil || !strings.Contains(err.Error(), "providers[0].service_terms: unknown key for type google") {
		t.Errorf("service_terms on google: %v", err)
	}
}

func TestDecodeKakaoServiceTerms(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	got, err := decodeKakaoServiceTerms([]byte(`{"id":9007199254740993,"service_terms":[
		{"tag":"service","required":true,"agreed":true,"revocable":false,"agreed_at":"2026-12-01T09:00:00Z"},
		{"tag":"privacy","required":true,"agreed":true,"revocable":false},
		{"tag":"marketing","required":false,"agreed":false,"revocable":true},
		{"tag":"Bad Tag","required":false,"agreed":true,"revocable":true,"agreed_at":"2026-12-01T09:00:00Z"}]}`), "9007199254740993")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (AgreedTerm{Tag: "service", AgreedAt: at}) || got[1] != (AgreedTerm{Tag: "privacy"}) {
		t.Errorf("got %+v", got)
	}
	if got, err := decodeKakaoServiceTerms([]byte(`{"id":1}`), "1"); err != nil || len(got) != 0 || got == nil {
		t.Errorf("no service_terms: %v %v", got, err)
	}
	for name, body := range map[string]string{
		"malformed":   `{"id":1,`,
		"no id":       `{"service_terms":[]}`,
		"string id":   `{"id":"x1","service_terms":[]}`,
		"other user":  `{"id":2,"service_terms":[]}`,
		"not a list":  `{"id":1,"service_terms":{"tag":"service"}}`,
		"agreed text": `{"id":1,"service_terms":[{"tag":"service","agreed":"true"}]}`,
	} {
		_, err := decodeKakaoServiceTerms([]byte(body), "1")
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeInvalidResponse {
			t.Errorf("%s: %v, want invalid_response", name, err)
		}
	}
}
