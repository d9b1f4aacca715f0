package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/socialbroker/broker/providers"
)

// Keys that docs/configuration.md documents ahead of the code (from the
// contract), each allowed here until its change lands. A branch that adds
// one of these keys removes it from the list; the test fails while a
// listed key already exists, so the list cannot go stale.
var (
	// top-level key paths
	pendingKeys = []string{}
	// provider types documented before their preset exists
	pendingTypes = []string{}
	// type:key pairs of existing provider types
	pendingProviderKeys = []string{}
)

// docRow is one key row of a table in docs/configuration.md.
type docRow struct {
	key   string
	cells []string
}

// coming: the row's description starts with "*(coming)*".
func (r docRow) coming() bool {
	return strings.HasPrefix(r.cells[len(r.cells)-1], "*(coming)*")
}

func readConfigDoc(t *testing.T) []docRow {
	t.Helper()
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []docRow
	row := regexp.MustCompile("^\\| `([a-z_\\[\\]\\.]+)` \\|")
	for _, line := range strings.Split(string(data), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		rows = append(rows, docRow{key: m[1], cells: cells})
	}
	return rows
}

// fileKeys are the key paths of the config file's struct: leaves, with
// "[]" for list elements; the providers list is left to its presets.
func fileKeys(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if reflect.PointerTo(ft).Implements(selfDecoding) {
			continue // provider entries: providers.ConfigKeys
		}
		switch {
		case ft.Kind() == reflect.Struct:
			fileKeys(ft, prefix+name+".", out)
		case ft.Kind() == reflect.Slice && elem(ft).Kind() == reflect.Struct && !reflect.PointerTo(elem(ft)).Implements(selfDecoding):
			fileKeys(elem(ft), prefix+name+"[].", out)
		case ft.Kind() == reflect.Slice && reflect.PointerTo(elem(ft)).Implements(selfDecoding):
			// the providers list
		default:
			*out = append(*out, prefix+name)
		}
	}
}

func elem(t reflect.Type) reflect.Type {
	t = t.Elem()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// docs/configuration.md documents every key the loader accepts, for every
// provider type, and nothing else but the pending keys above.
func TestConfigDocMatchesCode(t *testing.T) {
	rows := readConfigDoc(t)
	documented := map[string]docRow{}
	for _, r := range rows {
		if _, dup := documented[r.key]; dup {
			t.Errorf("docs/configuration.md: %s is documented twice", r.key)
		}
		documented[r.key] = r
	}

	// Top-level keys.
	var code []string
	fileKeys(reflect.TypeOf(file{}), "", &code)
	if len(code) < 30 {
		t.Fatalf("read only %d keys from the config struct: %v", len(code), code)
	}
	for _, k := range code {
		if _, ok := documented[k]; !ok {
			t.Errorf("docs/configuration.md does not document %s", k)
		}
		if slices.Contains(pendingKeys, k) {
			t.Errorf("%s is in the code now: remove it from pendingKeys (and its (coming) mark in docs/configuration.md)", k)
		}
	}
	under := func(keys []string, k string) bool { // k is a key or a section above keys
		for _, c := range keys {
			if c == k || strings.HasPrefix(c, k+".") || strings.HasPrefix(c, k+"[].") {
				return true
			}
		}
		return false
	}
	for _, r := range rows {
		if strings.HasPrefix(r.key, "providers[].") {
			continue
		}
		if !under(code, r.key) && !under(pendingKeys, r.key) {
			t.Errorf("docs/configuration.md documents %s, which the config does not have (nor is it in pendingKeys)", r.key)
		}
		pending := !under(code, r.key)
		if coming := r.coming(); coming != pending {
			t.Errorf("docs/configuration.md: %s is marked (coming) = %v, but pending = %v", r.key, coming, pending)
		}
	}

	// Provider keys, per type: the "types" column (the fourth) of the row
	// providers[].KEY names the types that accept KEY.
	byType := providers.ConfigKeys()
	if len(byType) < 5 {
		t.Fatalf("providers.ConfigKeys has %d types", len(byType))
	}
	for _, typ := range pendingTypes {
		if _, ok := byType[typ]; ok {
			t.Errorf("provider type %s is in the code now: remove it from pendingTypes", typ)
		}
	}
	known := func(typ string) bool { _, ok := byType[typ]; return ok || slices.Contains(pendingTypes, typ) }
	typesOf := func(r docRow) []string {
		if len(r.cells) < 5 {
			t.Errorf("docs/configuration.md: %s: want the columns key, type, default, types, what it does", r.key)
			return nil
		}
		var out []string
		for _, w := range regexp.MustCompile(`[a-z0-9]+`).FindAllString(r.cells[3], -1) {
			if known(w) && !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
		return out
	}
	for typ, keys := range byType {
		for _, k := range keys {
			r, ok := documented["providers[]."+k]
			if !ok {
				t.Errorf("docs/configuration.md does not document providers[].%s (type %s)", k, typ)
				continue
			}
			if !slices.Contains(typesOf(r), typ) {
				t.Errorf("docs/configuration.md: providers[].%s does not list type %s, which accepts it", k, typ)
			}
			if slices.Contains(pendingProviderKeys, typ+":"+k) {
				t.Errorf("type %s accepts %s now: remove %s:%s from pendingProviderKeys", typ, k, typ, k)
			}
		}
	}
	for _, r := range rows {
		k, ok := strings.CutPrefix(r.key, "providers[].")
		if !ok {
			continue
		}
		types := typesOf(r)
		if len(types) == 0 {
			t.Errorf("docs/configuration.md: providers[].%s names no provider type", k)
		}
		pending := false
		for _, typ := range types {
			p := slices.Contains(pendingTypes, typ) || slices.Contains(pendingProviderKeys, typ+":"+k)
			if !p && !slices.Contains(byType[typ], k) {
				t.Errorf("docs/configuration.md: providers[].%s lists type %s, which does not accept it", k, typ)
			}
			pending = pending || (p && !slices.ContainsFunc(types, func(o string) bool { return slices.Contains(byType[o], k) }))
		}
		if coming := r.coming(); coming != pending {
			t.Errorf("docs/configuration.md: providers[].%s is marked (coming) = %v, but only pending types accept it = %v", k, coming, pending)
		}
	}
}
