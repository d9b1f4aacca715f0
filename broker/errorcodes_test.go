package broker

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/socialbroker/broker/internal/web"
	"github.com/socialbroker/broker/providers"
	"github.com/socialbroker/broker/storage"
)

// The ErrorCodes table is documentation; these tests keep it true. They
// read the sources (broker, providers, internal/web) with go/parser and call
// the error mappings directly: no database, no network.

// httpStatusNames resolves the http.StatusXxx constants the handlers use.
// A handler using one not listed here fails TestErrorCodesCoverHandlers
// with a message saying so: add it.
var httpStatusNames = map[string]int{
	"StatusBadRequest":            http.StatusBadRequest,
	"StatusUnauthorized":          http.StatusUnauthorized,
	"StatusForbidden":             http.StatusForbidden,
	"StatusNotFound":              http.StatusNotFound,
	"StatusMethodNotAllowed":      http.StatusMethodNotAllowed,
	"StatusConflict":              http.StatusConflict,
	"StatusGone":                  http.StatusGone,
	"StatusRequestEntityTooLarge": http.StatusRequestEntityTooLarge,
	"StatusUnsupportedMediaType":  http.StatusUnsupportedMediaType,
	"StatusUnprocessableEntity":   http.StatusUnprocessableEntity,
	"StatusTooManyRequests":       http.StatusTooManyRequests,
	"StatusInternalServerError":   http.StatusInternalServerError,
	"StatusNotImplemented":        http.StatusNotImplemented,
	"StatusBadGateway":            http.StatusBadGateway,
	"StatusServiceUnavailable":    http.StatusServiceUnavailable,
	"StatusGatewayTimeout":        http.StatusGatewayTimeout,
}

// parseDir parses the non-test Go files of dir (relative to this package).
func parseDir(t *testing.T, dir string) map[string]*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		files[p] = f
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// stringLiterals is every string literal of the files.
func stringLiterals(files map[string]*ast.File) map[string]bool {
	out := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := stringLit(asExpr(n)); ok {
				out[s] = true
			}
			return true
		})
	}
	return out
}

func asExpr(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}

// pageCatalogue is the keys of internal/web's errorCatalogue (unexported,
// so read from the source).
func pageCatalogue(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range parseDir(t, filepath.Join("..", "internal", "web")) {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if name.Name != "errorCatalogue" || i >= len(vs.Values) {
						continue
					}
					cl, ok := vs.Values[i].(*ast.CompositeLit)
					if !ok {
						t.Fatalf("errorCatalogue is not a composite literal")
					}
					for _, el := range cl.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						if k, ok := stringLit(kv.Key); ok {
							out[k] = true
						}
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("internal/web: errorCatalogue not found or empty; update pageCatalogue")
	}
	return out
}

// providerCodes is the values of the Code* constants of package providers.
func providerCodes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, vs := range constSpecs(parseDir(t, filepath.Join("..", "providers"))) {
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
				continue
			}
			if v, ok := stringLit(vs.Values[i]); ok {
				out[name.Name] = v
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("providers: no Code* constants found")
	}
	return out
}

// emitted is one error construction found in broker/*.go.
type emitted struct {
	where   string
	code    string
	status  int // 0 when not a literal http.StatusXxx
	surface string
}

// constSpecs is every const declaration of the files.
func constSpecs(files map[string]*ast.File) []*ast.ValueSpec {
	var out []*ast.ValueSpec
	for _, f := range files {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
				for _, spec := range gd.Specs {
					out = append(out, spec.(*ast.ValueSpec))
				}
			}
		}
	}
	return out
}

// codeConsts is the value of every Code constant of broker/*.go (name →
// code), read from the source: a string literal, or a providers.Code*
// constant.
func codeConsts(t *testing.T, files map[string]*ast.File) map[string]string {
	t.Helper()
	prov := providerCodes(t)
	out := map[string]string{}
	for _, vs := range constSpecs(files) {
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
			continue
		}
		for i, name := range vs.Names {
			switch v := vs.Values[i].(type) {
			case *ast.BasicLit:
				out[name.Name], _ = stringLit(v)
			case *ast.SelectorExpr:
				out[name.Name] = prov[v.Sel.Name]
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d Code constants; the scan is broken", len(out))
	}
	return out
}

// handlerErrors finds every apiError{…} and pageError{…} literal with a
// constant Code (a string literal or a Code constant), every
// errBadRequest(code, …) call and every map literal with an "error" key
// (raw JSON error bodies) in broker/*.go.
func handlerErrors(t *testing.T) []emitted {
	t.Helper()
	var out []emitted
	fset := token.NewFileSet()
	paths, _ := filepath.Glob("*.go")
	files := map[string]*ast.File{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = f
	}
	consts := codeConsts(t, files)
	codeOf := func(e ast.Expr) (string, bool) {
		if s, ok := stringLit(e); ok {
			return s, true
		}
		if call, ok := e.(*ast.CallExpr); ok && len(call.Args) == 1 { // string(codeX)
			e = call.Args[0]
		}
		if id, ok := e.(*ast.Ident); ok {
			v, ok := consts[id.Name]
			return v, ok
		}
		return "", false
	}
	for _, p := range paths {
		f := files[p]
		if f == nil {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && (id.Name == "apiError" || id.Name == "pageError") {
					e := emitted{where: fset.Position(n.Pos()).String(), surface: "api"}
					if id.Name == "pageError" {
						e.surface = "page"
					}
					for _, el := range n.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						switch key := kv.Key.(*ast.Ident); {
						case key == nil:
						case key.Name == "Code":
							e.code, _ = codeOf(kv.Value)
						case key.Name == "Status":
							if sel, ok := kv.Value.(*ast.SelectorExpr); ok {
								if x, ok := sel.X.(*ast.Ident); ok && x.Name == "http" {
									st, known := httpStatusNames[sel.Sel.Name]
									if !known {
										t.Errorf("%s: http.%s is not in httpStatusNames; add it", e.where, sel.Sel.Name)
									}
									e.status = st
								}
							}
						}
					}
					if e.code != "" {
						out = append(out, e)
					}
				}
				if _, ok := n.Type.(*ast.MapType); ok {
					for _, el := range n.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						if k, _ := stringLit(kv.Key); k == "error" {
							if v, ok := codeOf(kv.Value); ok {
								out = append(out, emitted{where: fset.Position(n.Pos()).String(), code: v, surface: "api"})
							}
						}
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "errBadRequest" && len(n.Args) > 0 {
					if v, ok := codeOf(n.Args[0]); ok {
						out = append(out, emitted{where: fset.Position(n.Pos()).String(), code: v, status: http.StatusBadRequest, surface: "api"})
					}
				}
			}
			return true
		})
	}
	if len(out) < 10 {
		t.Fatalf("found only %d error constructions in broker/*.go; the scan is broken", len(out))
	}
	return out
}

func tableHas(code string, status int, surface string) bool {
	for _, e := range ErrorCodes {
		if e.Code == code && (status == 0 || e.Status == status) && (surface == "" || e.Surface == surface) {
			return true
		}
	}
	return false
}

func TestErrorCodesTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for i, e := range ErrorCodes {
		key := e.Surface + " " + strconv.Itoa(e.Status) + " " + e.Code
		switch {
		case e.Code == "":
			t.Errorf("row %d: no code", i)
		case e.Surface != "page" && e.Surface != "api":
			t.Errorf("%s: surface must be page or api", key)
		case http.StatusText(e.Status) == "" || e.Status < 400:
			t.Errorf("%s: status is not an HTTP error status", key)
		case e.Endpoints == "" || e.When == "":
			t.Errorf("%s: Endpoints and When must say something", key)
		case seen[key]:
			t.Errorf("%s: listed twice", key)
		}
		seen[key] = true
	}
}

// Every code of the table is real: a string in the broker's or the
// providers' sources, or a page of the catalogue.
func TestErrorCodesExistInSource(t *testing.T) {
	lits := stringLiterals(parseDir(t, "."))
	for s := range stringLiterals(parseDir(t, filepath.Join("..", "providers"))) {
		lits[s] = true
	}
	cat := pageCatalogue(t)
	for _, e := range ErrorCodes {
		if !lits[e.Code] && !cat[e.Code] {
			t.Errorf("table code %q (%s %d) appears neither in broker/providers sources nor in the page catalogue", e.Code, e.Surface, e.Status)
		}
	}
}

// Every page of the catalogue is in the table, and every code shown on a
// page has wording in the catalogue (else the page says server_error).
func TestErrorCodesMatchPageCatalogue(t *testing.T) {
	cat := pageCatalogue(t)
	for code := range cat {
		if !tableHas(code, 0, "") {
			t.Errorf("page catalogue code %q is not in ErrorCodes", code)
		}
	}
	for _, e := range ErrorCodes {
		if e.Surface == "page" && !cat[e.Code] {
			t.Errorf("page code %q has no wording in internal/web's catalogue (it would render as server_error)", e.Code)
		}
	}
}

// Every error the handlers construct is in the table, with its status and
// surface where the source states them.
func TestErrorCodesCoverHandlers(t *testing.T) {
	for _, e := range handlerErrors(t) {
		if !tableHas(e.code, e.status, e.surface) {
			t.Errorf("%s: %s error %q (status %d) is not in ErrorCodes", e.where, e.surface, e.code, e.status)
		}
	}
}

// Every provider code reaches the callback's error page with the status
// providerPageError gives it.
func TestErrorCodesCoverProviderCodes(t *testing.T) {
	for name, code := range providerCodes(t) {
		pe := providerPageError(&providers.Error{Code: code, Cause: errors.New("test")})
		if string(pe.Code) != code {
			t.Errorf("providerPageError(%s) shows %q", name, pe.Code)
		}
		if !tableHas(code, pe.Status, "page") {
			t.Errorf("provider code %s = %q reaches the page with %d, which ErrorCodes does not list", name, code, pe.Status)
		}
	}
	// A failure that is not a *providers.Error is a provider_error.
	if pe := providerPageError(errors.New("plain")); !tableHas(string(pe.Code), pe.Status, "page") {
		t.Errorf("plain provider failure → %s %d, not in ErrorCodes", pe.Code, pe.Status)
	}
}

// The fallbacks of the two adapters: database outages are 503 with
// Retry-After, everything else 500; a 429 or 403 apiError inside a page
// handler becomes rate_limited or invalid_request.
func TestErrorCodesAdapters(t *testing.T) {
	pages, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.DiscardHandler), pages: pages}
	outage := errors.Join(storage.ErrUnavailable, errors.New("test"))
	refused := errors.Join(storage.ErrInvalid, errors.New("test"))

	for _, c := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{outage, 503, "temporarily_unavailable", true},
		{refused, 400, "invalid_request", false},
		{errors.New("boom"), 500, "server_error", false},
		{errInvalidGrant(nil), 401, "invalid_grant", false},
		{errInvalidToken(nil), 401, "invalid_token", false},
	} {
		w := httptest.NewRecorder()
		s.writeAPIError(w, httptest.NewRequest("GET", "/auth/me", nil), c.err)
		body := w.Body.String()
		if w.Code != c.status || !strings.Contains(body, `"error":"`+c.code+`"`) || !strings.Contains(body, `"error_description":`) {
			t.Errorf("api %v: %d %s, want %d %s", c.err, w.Code, body, c.status, c.code)
		}
		if got := w.Header().Get("Retry-After") != ""; got != c.retryAfter {
			t.Errorf("api %v: Retry-After %q", c.err, w.Header().Get("Retry-After"))
		}
		if !tableHas(c.code, c.status, "api") {
			t.Errorf("api %s %d not in ErrorCodes", c.code, c.status)
		}
	}

	for _, c := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{outage, 503, "temporarily_unavailable", true},
		{refused, 400, "invalid_request", false},
		{errors.New("boom"), 500, "server_error", false},
		{&apiError{Status: 429, Code: "rate_limited"}, 429, "rate_limited", false},
		{&apiError{Status: 403, Code: "invalid_origin"}, 403, "invalid_request", false},
		{&pageError{Status: 400, Code: "no_such_code"}, 400, "server_error", false}, // the catalogue's fallback
	} {
		w := httptest.NewRecorder()
		s.page(func(http.ResponseWriter, *http.Request) error { return c.err }).ServeHTTP(w, httptest.NewRequest("GET", "/auth/callback/x", nil))
		body := w.Body.String()
		if w.Code != c.status || !strings.Contains(body, ">"+c.code+"<") {
			t.Errorf("page %v: %d, want %d showing %s", c.err, w.Code, c.status, c.code)
		}
		if got := w.Header().Get("Retry-After") != ""; got != c.retryAfter {
			t.Errorf("page %v: Retry-After %q", c.err, w.Header().Get("Retry-After"))
		}
		if c.code != "server_error" && !tableHas(c.code, c.status, "page") {
			t.Errorf("page %s %d not in ErrorCodes", c.code, c.status)
		}
	}
}
