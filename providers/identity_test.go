package providers_test

import (
	"strings"
	"testing"

	"github.com/socialbroker/broker/providers"
)

func TestClean(t *testing.T) {
	honest := providers.Identity{Provider: "kakao", Subject: "3012345678", Email: "a@b.example", EmailVerified: true,
		Name: "라이언", Picture: "https://k.kakaocdn.net/p.jpg", Grant: providers.Grant{AccessToken: "at"}}
	got, err := providers.Clean(honest)
	if err != nil || got != honest {
		t.Fatalf("an honest identity changed: %+v, %v", got, err)
	}
	for name, sub := range map[string]string{
		"empty": "", "NUL": "12\x003", "invalid UTF-8": "12\xff", "newline": "1\n2",
		"bidi override": "12\u202e3", "zero-width": "1\u200b2", "too long": strings.Repeat("1", 256),
	} {
		id := honest
		id.Subject = sub
		if _, err := providers.Clean(id); providers.ErrorCode(err) != providers.CodeInvalidResponse {
			t.Errorf("subject %s: err %v, want %s", name, err, providers.CodeInvalidResponse)
		}
	}
	id := honest
	id.Subject = strings.Repeat("1", 255)
	id.Name = "nick\x00name"
	id.Email = "a\u202e@b.example"
	id.Picture = "javascript:alert(1)"
	got, err = providers.Clean(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != id.Subject || got.Name != "" || got.Email != "" || got.EmailVerified || got.Picture != "" || got.Grant != honest.Grant {
		t.Fatalf("unclean profile values kept: %+v", got)
	}
	// Real names with joiners survive: emoji ZWJ sequences, Persian ZWNJ.
	for _, name := range []string{"철수👩\u200d💻", "❤️\u200d🔥민지", "می\u200cخواهم", "a+b"} {
		id := honest
		id.Name = name
		id.Picture = "HTTPS://k.kakaocdn.net/p.jpg"
		if got, err := providers.Clean(id); err != nil || got.Name != name || got.Picture != id.Picture {
			t.Errorf("name %q / picture %q dropped: %+v %v", name, id.Picture, got, err)
		}
	}
	for _, s := range []string{"a\u202eb", "a\u2066b", "a\u200fb", "a\x00b", "a\nb", "a\ufffdb", "a\xffb"} {
		if providers.CleanText(s) {
			t.Errorf("CleanText(%q) = true", s)
		}
	}
}
