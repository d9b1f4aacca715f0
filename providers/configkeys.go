package providers

import (
	"reflect"
	"slices"
	"strings"
)

// ConfigKeys lists, for each provider type, the keys its entries accept,
// read from the preset's typed config: nested keys dotted
// (success.path), a mapping of free keys by its own name (claims).
// docs/configuration.md is checked against it.
func ConfigKeys() map[string][]string {
	out := map[string][]string{}
	for typ, p := range presets {
		keys := yamlKeys(reflect.TypeOf(p.config()), "")
		slices.Sort(keys)
		out[typ] = keys
	}
	return out
}

// yamlKeys are the yaml keys of struct t (through inline structs and into
// nested ones), each prefixed.
func yamlKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" || (f.Anonymous && name == "") {
			keys = append(keys, yamlKeys(f.Type, prefix)...)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(ft, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}
