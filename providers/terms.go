package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// TermsReader is implemented by providers whose consent screen can also
// collect agreement to the service's own terms (Kakao Sync). The broker
// asks it only for a new identity, and only when TermsTags is not empty.
type TermsReader interface {
	// TermsTags are the tags the provider's consent screen is asked to
	// show (nil: none, and AgreedTerms is never called).
	TermsTags() []string
	// AgreedTerms reads, with the access token of a login, the terms the
	// user (subject, as Exchange returned it) agreed to at the provider.
	// Errors are *Error.
	AgreedTerms(ctx context.Context, subject string, g Grant) ([]AgreedTerm, error)
}

// AgreedTerm is one term a user agreed to at the provider. AgreedAt is the
// provider's time of agreement, zero when it sent none that parses.
type AgreedTerm struct {
	Tag      string
	AgreedAt time.Time
}

var _ TermsReader = (*kakao)(nil)

// kakaoServiceTermsPath is Kakao's "retrieve consent details for service
// terms" API (v2, since 2023-07-13), served beside /v2/user/me.
const kakaoServiceTermsPath = "/v2/user/service_terms"

// serviceTermTag is the syntax of a service_terms tag (the same as
// signup.terms tags).
var serviceTermTag = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

func checkServiceTerms(ck checker, tags []string) {
	seen := map[string]bool{}
	for i, t := range tags {
		key := "service_terms[" + strconv.Itoa(i) + "]"
		switch {
		case !serviceTermTag.MatchString(t):
			ck.add(key, "must be 1-64 of a-z, 0-9 and _, got %q", t)
		case seen[t]:
			ck.add(key, "duplicate tag %q", t)
		}
		seen[t] = true
	}
}

// TermsTags is the provider's service_terms.
func (k *kakao) TermsTags() []string { return k.serviceTerms }

// AgreedTerms calls GET /v2/user/service_terms on the origin of the
// userinfo URL with the user's access token, and returns the terms whose
// agreed is true. An answer about another user than subject is refused.
func (k *kakao) AgreedTerms(ctx context.Context, subject string, g Grant) ([]AgreedTerm, error) {
	if g.AccessToken == "" {
		return nil, &Error{Code: CodeProviderError, Cause: errors.New("service terms: no access token")}
	}
	u, err := url.Parse(k.userinfoURL)
	if err != nil {
		return nil, &Error{Code: CodeProviderError, Cause: errors.New("service terms: bad userinfo URL")}
	}
	endpoint := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: kakaoServiceTermsPath}).String()
	body, perr := k.h.getJSON(ctx, "service terms", endpoint, g.AccessToken)
	if perr != nil {
		return nil, perr
	}
	return decodeKakaoServiceTerms(body, subject)
}

// kakaoServiceTerms is the wire shape of /v2/user/service_terms:
// {"id":…, "service_terms":[{"tag","required","agreed","revocable","agreed_at","agreed_by"}]}.
type kakaoServiceTerms struct {
	ID           scalar `json:"id"`
	ServiceTerms []struct {
		Tag      string `json:"tag"`
		Required bool   `json:"required"`
		Agreed   bool   `json:"agreed"`
		AgreedAt string `json:"agreed_at"`
	} `json:"service_terms"`
}

// decodeKakaoServiceTerms keeps the agreed terms of subject. A body without
// subject's id or
// whose service_terms is not a list is not the answer; a term with a tag
// outside the tag syntax is skipped (it could not be configured).
func decodeKakaoServiceTerms(body []byte, subject string) ([]AgreedTerm, error) {
	var w kakaoServiceTerms
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, &Error{Code: CodeInvalidResponse, Cause: errors.New("service terms: malformed JSON")}
	}
	if !isDecimal(string(w.ID)) {
		return nil, &Error{Code: CodeInvalidResponse, Cause: errors.New("service terms: id missing or not a decimal integer")}
	}
	if string(w.ID) != subject {
		return nil, &Error{Code: CodeInvalidResponse, Cause: errors.New("service terms: id differs from the user's")}
	}
	out := []AgreedTerm{}
	for _, t := range w.ServiceTerms {
		if !t.Agreed || !serviceTermTag.MatchString(t.Tag) {
			continue
		}
		at, err := time.Parse(time.RFC3339, t.AgreedAt)
		if err != nil {
			at = time.Time{}
		}
		out = append(out, AgreedTerm{Tag: t.Tag, AgreedAt: at})
	}
	return out, nil
}
