// Package apidoc_test checks docs/openapi.yaml and docs/api.md against the
// broker's routes; it lives apart so that the broker's test binary (and its
// fuzz build) does not link the OpenAPI library.
package apidoc_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"go.yaml.in/yaml/v3"
)

// docs/openapi.yaml is a valid OpenAPI 3.1 document (checked against the
// specification's JSON schema by libopenapi-validator, and built into a
// model by libopenapi, which resolves every $ref).
func TestOpenAPIDocumentIsValid(t *testing.T) {
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(data)
	if err != nil {
		t.Fatalf("libopenapi: %v", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi: %s, want 3.1.x", v)
	}
	if valid, errs := schema_validation.ValidateOpenAPIDocument(doc); !valid {
		for _, e := range errs {
			t.Errorf("docs/openapi.yaml: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s (line %d): %s", se.FieldPath, se.Line, se.Reason)
			}
		}
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("docs/openapi.yaml: building the model: %v", err)
	}
	if n := model.Model.Paths.PathItems.Len(); n < 20 {
		t.Errorf("the model has %d paths", n)
	}
}

// Every route registered in broker/routes.go is in docs/openapi.yaml, and
// every operation there is served, unless it is marked x-coming: true
// (documented from the contract ahead of its code); one marked so that is
// served must lose the mark. docs/api.md names every path.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	src, err := os.ReadFile("../../broker/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string // "GET /auth/login/{provider}"
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		routes = append(routes, m[1]+" "+strings.TrimSuffix(m[2], "{$}"))
	}
	if len(routes) < 25 {
		t.Fatalf("read only %d routes from routes.go: %v", len(routes), routes)
	}

	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{} // "GET /path" → x-coming
	for path, item := range spec.Paths {
		for method, node := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue
			}
			var op struct {
				Coming bool `yaml:"x-coming"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op.Coming
		}
	}
	served := map[string]bool{}
	for _, r := range routes {
		found := ""
		if _, ok := ops[r]; ok {
			found = r
		} else if strings.HasSuffix(r, "/") { // a subtree: /static/ as /static/{asset}
			for op := range ops {
				if strings.HasPrefix(op, r+"{") && strings.Count(op[len(r):], "/") == 0 {
					found = op
				}
			}
		}
		if found == "" {
			t.Errorf("route %q of broker/routes.go is not in docs/openapi.yaml", r)
			continue
		}
		served[found] = true
		if ops[found] {
			t.Errorf("docs/openapi.yaml: %s is served now: remove its x-coming mark", found)
		}
	}
	for op, coming := range ops {
		if !served[op] && !coming {
			t.Errorf("docs/openapi.yaml documents %s, which broker/routes.go does not serve (mark it x-coming: true if it is on its way)", op)
		}
	}

	apiDoc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for op := range ops {
		method, path, _ := strings.Cut(op, " ")
		if !strings.Contains(string(apiDoc), "`"+method+" "+path+"`") {
			paths = append(paths, op)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		t.Errorf("docs/api.md does not name `%s`", p)
	}
}
