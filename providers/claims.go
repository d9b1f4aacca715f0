package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// scalar is a JSON string or number kept as its exact text: the number
// 9007199254740993 stays "9007199254740993", never a float. null is "".
type scalar string

func (s *scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case b[0] == '"':
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = scalar(str)
	case string(b) == "null":
		*s = ""
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		// encoding/json has already checked the literal's syntax.
		*s = scalar(b)
	default:
		return errors.New("not a string or a number")
	}
	return nil
}

// flexBool accepts true/false and the strings "true"/"false" (older Google
// id_tokens sent email_verified as a string).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true", `"true"`:
		*f = true
	case "false", `"false"`, "null", `""`:
		*f = false
	default:
		return errors.New("not a boolean")
	}
	return nil
}

// isDecimal reports whether s is a non-empty run of ASCII digits.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// claimPath is a dotted path into nested JSON, split once at boot:
// "response.id", "kakao_account.profile.nickname", "emails.0.value"
// (a numeric segment also indexes an array).
type claimPath []string

func parseClaimPath(s string) (claimPath, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	p := strings.Split(s, ".")
	for _, seg := range p {
		if seg == "" {
			return nil, errors.New("empty segment in path " + strconv.Quote(s))
		}
	}
	return claimPath(p), nil
}

// lookup walks doc (decoded with UseNumber) and returns the value at p.
func (p claimPath) lookup(doc any) (any, bool) {
	cur := doc
	for _, seg := range p {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// str returns the value at p as a string: strings as they are, numbers as
// their exact decimal text, booleans as true/false. Objects, arrays, null
// and missing values give "", false.
func (p claimPath) str(doc any) (string, bool) {
	v, ok := p.lookup(doc)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// truthy reports whether the value at p is true or "true".
func (p claimPath) truthy(doc any) bool {
	s, ok := p.str(doc)
	return ok && s == "true"
}

// decodeJSONDoc decodes a JSON object with UseNumber, so numbers keep their
// exact text.
func decodeJSONDoc(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("not a JSON object")
	}
	// Anything after the object is refused (dec.More would miss data that
	// starts with ']' or '}').
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON object")
	}
	return doc, nil
}
