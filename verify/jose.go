package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// parseObject reads one JSON object of valid UTF-8 into its members,
// refusing a repeated member name (parsers disagree on which one wins)
// and anything after the object.
func parseObject(b []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("not a JSON object")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("member %q repeated", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// stringMember returns member name of m, which must be a JSON string when
// present ("" when absent).
func stringMember(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if !ok {
		return "", nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// timeMember returns member name of m, a NumericDate (RFC 7519: seconds
// since the epoch, possibly fractional), or the zero time when absent.
func timeMember(m map[string]json.RawMessage, name string) (time.Time, error) {
	raw, ok := m[name]
	if !ok {
		return time.Time{}, nil
	}
	bad := fmt.Errorf("%s is not a NumericDate", name)
	if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return time.Time{}, bad
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		if n < 0 || n > maxNumericDate {
			return time.Time{}, bad
		}
		return time.Unix(n, 0), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, bad
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// maxNumericDate is 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// parseClaims reads the claims of a token whose signature verified.
func parseClaims(payload []byte) (*Claims, error) {
	m, err := parseObject(payload)
	if err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	c := &Claims{}
	for name, dst := range map[string]*string{"iss": &c.Issuer, "sub": &c.Subject, "jti": &c.JTI, "sid": &c.SessionID, "idp": &c.IDP} {
		if *dst, err = stringMember(m, name); err != nil {
			return nil, invalid(ErrMalformed, "claims: %v", err)
		}
	}
	for name, dst := range map[string]*time.Time{"exp": &c.Expiry, "nbf": &c.NotBefore, "iat": &c.IssuedAt} {
		if *dst, err = timeMember(m, name); err != nil {
			return nil, invalid(ErrMalformed, "claims: %v", err)
		}
	}
	if c.Audience, err = audienceMember(m); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	switch {
	case c.Expiry.IsZero():
		return nil, invalid(ErrMissingClaim, "exp")
	case c.IssuedAt.IsZero():
		return nil, invalid(ErrMissingClaim, "iat")
	case c.Subject == "":
		return nil, invalid(ErrMissingClaim, "sub")
	case c.SessionID == "":
		return nil, invalid(ErrMissingClaim, "sid")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c.Raw); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	return c, nil
}

// audienceMember reads aud: one string or an array of strings.
func audienceMember(m map[string]json.RawMessage) ([]string, error) {
	raw, ok := m["aud"]
	if !ok {
		return nil, nil
	}
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("aud is not a string or an array of strings")
		}
		return []string{s}, nil
	case len(raw) > 0 && raw[0] == '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, errors.New("aud is not a string or an array of strings")
		}
		out := make([]string, 0, len(elems))
		for _, e := range elems {
			var s string
			if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &s) != nil {
				return nil, errors.New("aud is not a string or an array of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("aud is not a string or an array of strings")
}
