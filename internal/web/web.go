// Package web renders the broker's HTML pages (login, signup, error) from the
// embedded templates, in Korean or English, and serves the static assets and
// the demo frontend.
//
// Pages are executed into a buffer before anything is written, so a template
// failure becomes a clean 500 rather than half a page. No page carries inline
// styles or scripts: the broker sends CSP "default-src 'self'".
package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/socialbroker/broker/templates"
)

// Page template names, as embedded.
const (
	pageLogin  = "login.html"
	pageSignup = "signup.html"
	pageError  = "error.html"
	pageLink   = "link.html"
)

// loginPath is where the error page sends the user to start again.
const loginPath = "/auth/login"

// Renderer holds the parsed page templates and the static assets. It is
// safe for concurrent use.
type Renderer struct {
	pages  map[string]*template.Template
	brand  Brand
	assets *assets
}

// Options let operators brand the pages. The zero value is the built-in
// look.
type Options struct {
	// TemplatesDir holds templates that replace the built-in ones of the
	// same name (login.html, signup.html, error.html, link.html,
	// layout.html); "" keeps them all.
	TemplatesDir string
	// StaticDir holds assets served at /static/ in place of (or beside)
	// the built-in ones of the same name.
	StaticDir string
	Brand     Brand
}

// Brand is what every page shows of the product.
type Brand struct {
	ProductName  string // shown above each page's card
	LogoURL      string // a same-origin path (e.g. /static/logo.svg): the CSP allows no other images
	PrimaryColor string // #rgb or #rrggbb: buttons and links
	TermsURL     string // footer links
	PrivacyURL   string
}

// New parses the embedded templates (see NewWith).
func New() (*Renderer, error) { return NewWith(Options{}) }

// NewWith parses the templates, the operator's over the embedded ones. It
// fails if a page is missing or malformed, or if a static asset the pages
// rely on is missing, so that the broker refuses to start rather than
// failing on the first request. Templates are html/template: whatever an
// override prints is escaped as in the built-in pages, and the CSP still
// allows no inline script or style.
func NewWith(o Options) (*Renderer, error) {
	r := &Renderer{pages: make(map[string]*template.Template), brand: o.Brand}
	var tfs fs.FS = templates.FS
	if o.TemplatesDir != "" {
		tfs = overlay{top: os.DirFS(o.TemplatesDir), base: templates.FS}
	}
	for _, name := range []string{pageLogin, pageSignup, pageError, pageLink} {
		t, err := template.New(name).Option("missingkey=error").ParseFS(tfs, name, "layout.html")
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", name, err)
		}
		r.pages[name] = t
	}
	for _, name := range []string{"static/style.css", "static/demo.html", "static/demo.js"} {
		if _, err := templates.FS.Open(name); err != nil {
			return nil, fmt.Errorf("web: missing asset %s: %w", name, err)
		}
	}
	a, err := loadAssets(o.StaticDir, brandCSS(o.Brand.PrimaryColor))
	if err != nil {
		return nil, err
	}
	r.assets = a
	return r, nil
}

// overlay opens a file from top, or from base when top lacks it.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

// brandCSS is /static/brand.css: the primary colour as the pages' accent
// (validated by the config as #rgb or #rrggbb).
func brandCSS(color string) []byte {
	if color == "" {
		return []byte("/* no brand colour configured */\n")
	}
	return []byte(":root { --accent: " + color + "; --accent-text: #ffffff; }\n" +
		"@media (prefers-color-scheme: dark) { :root { --accent: " + color + "; --accent-text: #ffffff; } }\n")
}

// ProviderButton is one login button. Type is the provider preset: kakao,
// naver and google get their official button; anything else (oidc, oauth2)
// a neutral one labelled with DisplayName (or Name when that is empty).
type ProviderButton struct{ Name, Type, DisplayName, Href string }

// LoginPage is the data of the login page.
type LoginPage struct{ Providers []ProviderButton }

// SignupField is one input of the signup form. Name is both the input's name
// and the key of its label; Value is re-filled after an error.
type SignupField struct {
	Name, Value string
	MaxLen      int
	Invalid     bool
}

// SignupTerm is one term of the signup form: a checkbox named "terms" whose
// value is Tag, labelled in the request's language (known tags such as
// service, privacy, marketing and age have wording; any other shows the tag),
// with a link to URL.
type SignupTerm struct {
	Tag, URL          string
	Required, Checked bool
}

// SignupPage is the data of the signup form.
type SignupPage struct {
	Action    string // form action, e.g. /auth/signup
	CSRFToken string
	Fields    []SignupField
	Terms     []SignupTerm
	// Error is a message code: "", field_missing, field_blank,
	// field_too_long, field_invalid, csrf or terms_required. It is rendered
	// in the request's language with the label of the first Invalid field.
	Error string
}

// base is what every page template sees.
type base struct {
	Lang  string
	T     map[string]string
	Brand Brand
}

func (r *Renderer) newBase(req *http.Request) base {
	lang := Lang(req)
	return base{Lang: lang, T: ui[lang], Brand: r.brand}
}

type buttonView struct {
	Name, Href, Style, Label string
}

type langLink struct {
	Code, Label, Href string
	Current           bool
}

type loginData struct {
	base
	Buttons []buttonView
	Langs   []langLink
}

// Login renders the login page with one button per provider (200).
func (r *Renderer) Login(w http.ResponseWriter, req *http.Request, page LoginPage) {
	d := loginData{base: r.newBase(req)}
	for _, p := range page.Providers {
		style := strings.ToLower(p.Type)
		switch style {
		case "kakao", "naver", "google", "apple":
		default:
			style = "other"
		}
		display := p.DisplayName
		if display == "" {
			display = p.Name
		}
		d.Buttons = append(d.Buttons, buttonView{
			Name:  p.Name,
			Href:  p.Href,
			Style: style,
			Label: buttonLabel(d.Lang, style, display),
		})
	}
	// The language switcher keeps the rest of the query (return_to etc.).
	for _, l := range langNames {
		q := url.Values{}
		if req != nil && req.URL != nil {
			q = req.URL.Query()
		}
		q.Set("lang", l.Code)
		d.Langs = append(d.Langs, langLink{Code: l.Code, Label: l.Label, Href: "?" + q.Encode(), Current: l.Code == d.Lang})
	}
	r.render(w, req, http.StatusOK, pageLogin, d)
}

type fieldView struct {
	ID, Name, Label, Value, InputType, Autocomplete string
	MaxLen                                          int
	Invalid, Focus                                  bool
}

type signupData struct {
	base
	Action, CSRFToken, Message string
	Fields                     []fieldView
	Terms                      []termView
	TermsInvalid               bool
}

// Signup renders the signup form with status (0 means 200).
func (r *Renderer) Signup(w http.ResponseWriter, req *http.Request, status int, page SignupPage) {
	d := signupData{base: r.newBase(req), Action: page.Action, CSRFToken: page.CSRFToken}
	d.Terms, d.TermsInvalid = termViews(d.Lang, page.Terms), page.Error == "terms_required"
	var firstInvalid *SignupField
	for i, f := range page.Fields {
		v := fieldView{
			ID:        "field-" + f.Name,
			Name:      f.Name,
			Label:     fieldLabel(d.Lang, f.Name),
			Value:     f.Value,
			InputType: "text",
			MaxLen:    f.MaxLen,
			Invalid:   f.Invalid,
		}
		switch f.Name {
		case "email":
			v.InputType, v.Autocomplete = "email", "email"
		case "nickname":
			v.Autocomplete = "nickname"
		case "name":
			v.Autocomplete = "name"
		}
		if f.Invalid && firstInvalid == nil {
			firstInvalid = &page.Fields[i]
			v.Focus = true
		}
		d.Fields = append(d.Fields, v)
	}
	if page.Error != "" {
		label, maxLen := "", 0
		if firstInvalid != nil {
			label, maxLen = fieldLabel(d.Lang, firstInvalid.Name), firstInvalid.MaxLen
		}
		d.Message = signupMessage(d.Lang, page.Error, label, maxLen)
	}
	if status == 0 {
		status = http.StatusOK
	}
	r.render(w, req, status, pageSignup, d)
}

// LinkConfirmPage is the data of the page that asks a signed-in user to
// confirm a link that another site started.
type LinkConfirmPage struct {
	Provider     string // display name of the provider to link
	ContinueHref string // the link start again, now from the broker's own page
	CancelHref   string
}

type linkData struct {
	base
	Lead, ContinueHref, CancelHref string
}

// LinkConfirm renders the link confirmation page (200).
func (r *Renderer) LinkConfirm(w http.ResponseWriter, req *http.Request, page LinkConfirmPage) {
	d := linkData{base: r.newBase(req), ContinueHref: page.ContinueHref, CancelHref: page.CancelHref}
	d.Lead = fmt.Sprintf(d.T["link_lead"], page.Provider)
	r.render(w, req, http.StatusOK, pageLink, d)
}

type errorData struct {
	base
	Code, Title, Message, LoginHref string
}

// Error renders error.html with the human message for code, in the request's
// language, with status (0 means 500). An unknown code is shown as
// server_error: the page never echoes what it was given.
func (r *Renderer) Error(w http.ResponseWriter, req *http.Request, status int, code string) {
	r.ErrorReturning(w, req, status, code, "")
}

// ErrorReturning is Error whose "back to sign in" keeps returnTo, a
// return_to the broker validated already.
func (r *Renderer) ErrorReturning(w http.ResponseWriter, req *http.Request, status int, code, returnTo string) {
	d := errorData{base: r.newBase(req), LoginHref: loginPath}
	var text errorText
	d.Code, text = lookupError(d.Lang, code)
	d.Title, d.Message = text.Title, text.Message
	q := url.Values{}
	if returnTo != "" {
		q.Set("return_to", returnTo)
	}
	if req != nil && req.URL != nil && req.URL.Query().Has("lang") {
		q.Set("lang", d.Lang)
	}
	if len(q) > 0 {
		d.LoginHref += "?" + q.Encode()
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	r.render(w, req, status, pageError, d)
}

// render executes page into a buffer and only then writes the response.
func (r *Renderer) render(w http.ResponseWriter, req *http.Request, status int, page string, data any) {
	if status < 100 || status > 599 {
		status = http.StatusInternalServerError
	}
	var buf bytes.Buffer
	t := r.pages[page]
	err := fmt.Errorf("template %s not loaded", page)
	if t != nil {
		err = t.Execute(&buf, data)
	}
	h := w.Header()
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store") // pages carry CSRF tokens and per-user state
	}
	if err != nil {
		logger := slog.Default()
		if req != nil {
			logger.ErrorContext(req.Context(), "web: render failed", "page", page, "err", err)
		} else {
			logger.Error("web: render failed", "page", page, "err", err)
		}
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "Internal Server Error\n")
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Add("Vary", "Accept-Language")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
