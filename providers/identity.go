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
// (CodeInvalidResponse). Profile values that are not CleanText or are over
// 2 KiB are dropped, as if the provider had not sent them, and a picture
// that is not an http(s) URL too: they are optional, and a login must not
// fail over a display name.
func Clean(id Identity) (Identity, error) {
	if id.Subject == "" || len(id.Subject) > maxSubjectBytes || !strictText(id.Subject) {
		return Identity{}, &Error{Code: CodeInvalidResponse, Cause: errors.New("subject is not 1-255 bytes of printable UTF-8")}
	}
	for _, v := range []*string{&id.Email, &id.Name, &id.Picture} {
		if len(*v) > maxProfileBytes || !CleanText(*v) {
			*v = ""
		}
	}
	if scheme, _, _ := strings.Cut(id.Picture, "://"); !strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "http") {
		id.Picture = ""
	}
	if id.Email == "" {
		id.EmailVerified = false
	}
	return id, nil
}

// CleanText reports whether s is text fit to store and show on one line:
// valid UTF-8 without control characters (NUL, newlines, tabs), U+FFFD or
// bidirectional controls (which reorder what is shown around them and are
// used to disguise names). Other format characters stay allowed: the
// zero-width joiners of emoji sequences (woman + ZWJ + laptop) and of Persian or Indic
// words are part of real names.
func CleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r) {
			return false
		}
	}
	return true
}

// strictText is CleanText without any format character: what a subject, an
// identifier never shown to anyone, may contain.
func strictText(s string) bool {
	if !CleanText(s) {
		return false
	}
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}
