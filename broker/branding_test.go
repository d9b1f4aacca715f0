package broker_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialbroker/broker/broker/brokertest"
)

// An operator's templates and assets replace the built-in ones, the brand
// settings show on every page, and escaping and the CSP stay as they are.
func TestBrandedPages(t *testing.T) {
	t.Parallel()
	tdir, sdir := t.TempDir(), t.TempDir()
	login := `<!doctype html><html lang="{{.Lang}}"><head>{{template "head"}}<title>{{.T.login_title}}</title></head>
<body><main class="page">{{template "brand" .}}<h1 id="custom">Welcome to {{.Brand.ProductName}}</h1>
{{range .Buttons}}<a id="login-{{.Name}}" href="{{.Href}}">{{.Label}}</a>{{end}}{{template "footer" .}}</main></body></html>`
	if err := os.WriteFile(filepath.Join(tdir, "login.html"), []byte(login), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sdir, "logo.svg"), []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := "web:\n  templates_dir: " + tdir + "\n  static_dir: " + sdir + "\n" +
		"  product_name: \"Acme <b>Shop</b>\"\n  logo_url: /static/logo.svg\n  primary_color: \"#0a7d4f\"\n" +
		"  terms_url: https://acme.example/terms\n  privacy_url: https://acme.example/privacy\n"
	env := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}, Extra: extra})
	c := &http.Client{}

	r := do(t, c, "GET", env.URL+"/auth/login", nil, nil)
	wantStatus(t, r, 200)
	body := string(r.body)
	for _, want := range []string{
		`<h1 id="custom">Welcome to Acme &lt;b&gt;Shop&lt;/b&gt;</h1>`,
		`<img class="brand-logo" src="/static/logo.svg"`,
		`id="login-kakao"`,
		`href="https://acme.example/terms"`, `href="https://acme.example/privacy"`,
		`<link rel="stylesheet" href="/static/brand.css">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("branded login page lacks %q:\n%s", want, body)
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("CSP = %q", csp)
	}
	// The built-in pages carry the brand too.
	r = do(t, c, "GET", env.URL+"/auth/login/nope", nil, nil)
	if !strings.Contains(string(r.body), `class="brand-name">Acme &lt;b&gt;Shop&lt;/b&gt;<`) || !strings.Contains(string(r.body), "acme.example/privacy") {
		t.Fatalf("error page without the brand: %s", r.body)
	}
	// Assets: the operator's logo, the built-in stylesheet, the brand colour.
	wantStatus(t, do(t, c, "GET", env.URL+"/static/logo.svg", nil, nil), 200)
	wantStatus(t, do(t, c, "GET", env.URL+"/static/style.css", nil, nil), 200)
	r = do(t, c, "GET", env.URL+"/static/brand.css", nil, nil)
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "--accent: #0a7d4f") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("brand.css = %d %q %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	wantStatus(t, do(t, c, "GET", env.URL+"/static/../../etc/passwd", nil, nil), 404)

	// Without branding the pages are the built-in ones.
	plain := brokertest.New(t, brokertest.Options{Providers: []string{"kakao"}})
	r = do(t, c, "GET", plain.URL+"/auth/login", nil, nil)
	if strings.Contains(string(r.body), `id="brand"`) || strings.Contains(string(r.body), "brand-links") {
		t.Fatalf("unbranded page shows a brand: %s", r.body)
	}
}
