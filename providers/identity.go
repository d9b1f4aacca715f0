package providers

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a provider may hand over as an identity.
const (
	maxSubjectBytes = 255  // longer than any real provider's id
	maxProfileBytes = 2048 // email, name, picture URL
)

// Clean checks an identity a provider returned before anything is stored.
// The subject is the identity's key: it must be 1 to 255 bytes of valid
// UTF-8 without control or format characters, or the answer is refused
// (CodeInvalidResponse). Profile values that are not clean text (a NUL, an
// invalid byte, a bidi override) or are over 2 KiB are dropped, as if the
// provider had not sent them, and a picture that is not an http(s) URL too:
// they are optional, and a login must not fail over a display name.
func Clean(id Identity) (Identity, error) {
	if id.Subject == "" || len(id.Subject) > maxSubjectBytes || !cleanText(id.Subject) {
		return Identity{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("subject is not 1-255 bytes of printable UTF-8")}
	}
	for _, v := range []*string{&id.Email, &id.Name, &id.Picture} {
		if len(*v) > maxProfileBytes || !cleanText(*v) {
			*v = ""
		}
	}
	if !strings.HasPrefix(id.Picture, "https://") && !strings.HasPrefix(id.Picture, "http://") {
		id.Picture = ""
	}
	if id.Email == "" {
		id.EmailVerified = false
	}
	return id, nil
}

// cleanText reports whether s is valid UTF-8 without control characters,
// format characters (bidi overrides, zero-width joiners) or U+FFFD.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}
