// Package compact reads a JWS in its one canonical compact serialization:
// three base64url segments without padding, separated by two dots, each the
// exact encoding of its bytes.
//
// JOSE decoders are lenient: they skip '\r' and '\n', accept padding or the
// standard alphabet, and ignore non-zero unused bits in a segment's last
// character. Each leniency gives one token many spellings, which defeats
// any memory of used tokens kept by their text and lets altered copies of a
// token pass as the original. A token that is not canonical is refused.
package compact

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ErrNotCanonical: the token is not in canonical compact form.
var ErrNotCanonical = errors.New("token is not in canonical compact form")

// Parts are the decoded segments of a compact JWS.
type Parts struct {
	Header, Payload, Signature []byte
}

// Decode returns the segments of raw, or ErrNotCanonical.
func Decode(raw string) (Parts, error) {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return Parts{}, ErrNotCanonical
	}
	var out [3][]byte
	for i, seg := range segs {
		b, err := segment(seg)
		if err != nil {
			return Parts{}, err
		}
		out[i] = b
	}
	return Parts{Header: out[0], Payload: out[1], Signature: out[2]}, nil
}

func segment(seg string) ([]byte, error) {
	if seg == "" {
		return nil, ErrNotCanonical
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, ErrNotCanonical
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
		return nil, ErrNotCanonical
	}
	return b, nil
}
