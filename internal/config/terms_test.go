package config

import (
	"strings"
	"testing"
)

func TestSignupTerms(t *testing.T) {
	ok := strings.Replace(valid, "providers:\n", `signup:
  terms:
    - { tag: service, required: true, url: https://example.com/terms }
    - { tag: marketing, url: "http://example.com/m?x=1" }
providers:
`, 1) + "    service_terms: [service, marketing]\n"
	c, err := Parse([]byte(ok), env(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Signup.Terms; len(got) != 2 || got[0] != (Term{Tag: "service", Required: true, URL: "https://example.com/terms"}) || got[1].Required {
		t.Errorf("terms = %+v", got)
	}

	bad := strings.Replace(valid, "providers:\n", `signup:
  fields: [nickname, terms, agree_all]
  terms:
    - { tag: service, required: true, url: https://example.com/terms }
    - { tag: service, url: https://example.com/again }
    - { tag: "Bad Tag", url: https://example.com/b }
    - { tag: rel, url: /terms }
    - { tag: js, url: "javascript:alert(1)" }
    - { tag: x, url: https://example.com/x, label: X }
providers:
`, 1) + "    service_terms: [service, privacy, 'no way']\n"
	_, err = Parse([]byte(bad), env(goodEnv()))
	if err == nil {
		t.Fatal("bad terms accepted")
	}
	for _, want := range []string{
		"signup.fields[1]: terms is reserved",
		"signup.fields[2]: agree_all is reserved",
		`signup.terms[1].tag: duplicate tag "service"`,
		`signup.terms[2].tag: must be 1-64 of a-z, 0-9 and _, got "Bad Tag"`,
		`signup.terms[3].url: must be an absolute http(s) URL, got "/terms"`,
		`signup.terms[4].url: must be an absolute http(s) URL`,
		"signup.terms[5].label",
		`providers[0].service_terms[1]: tag "privacy" is not in signup.terms`,
		`providers[0].service_terms[2]: must be 1-64 of a-z, 0-9 and _, got "no way"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}
