package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	jsclient "github.com/socialbroker/broker/clients/js"
	"github.com/socialbroker/broker/templates"
)

// assets is templates/static with a strong ETag per file. Embedded files have
// no modification time, so http.FileServer alone would send neither ETag nor
// Last-Modified; a content hash lets browsers revalidate with no-cache.
type assets struct {
	fsys  fs.FS
	etags map[string]string // "style.css" -> `"<hash>"`
	// Files that are not in fsys: the JavaScript client the npm package
	// ships (broker-client.js) and the generated brand.css.
	memory map[string][]byte
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// embedded is templates/static alone (for Demo and the tests).
var staticAssets = sync.OnceValues(func() (*assets, error) { return loadAssets("", nil) })

// loadAssets reads templates/static, with the files of dir (when set) in
// place of or beside the built-in ones, the JavaScript client
// (clients/js/index.js as broker-client.js), and brand.css (when brandCSS
// is set).
func loadAssets(dir string, brandCSS []byte) (*assets, error) {
	sub, err := fs.Sub(templates.FS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	var fsys fs.FS = sub
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("web.static_dir: %s is not a readable directory", dir)
		}
		fsys = overlay{top: os.DirFS(dir), base: sub}
	}
	a := &assets{fsys: fsys, etags: make(map[string]string), memory: map[string][]byte{"broker-client.js": jsclient.Source}}
	if brandCSS != nil {
		a.memory["brand.css"] = brandCSS
	}
	add := func(fsys fs.FS) error {
		return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(a.fsys, p) // the file that wins
			if err != nil {
				return err
			}
			a.etags[p] = etagOf(b)
			return nil
		})
	}
	if err := add(sub); err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	if dir != "" {
		if err := add(os.DirFS(dir)); err != nil {
			return nil, fmt.Errorf("web.static_dir: %w", err)
		}
	}
	for name, b := range a.memory {
		a.etags[name] = etagOf(b)
	}
	return a, nil
}

// allowRead answers 405 for anything but GET and HEAD.
func allowRead(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	return false
}

// Static serves templates/static; mount it with
// http.StripPrefix("/static", web.Static()) at /static/. Responses carry
// Cache-Control: no-cache and a content-hash ETag, so browsers revalidate
// every time and get 304 while a file is unchanged. Directories are not
// listed.
func Static() http.Handler {
	a, err := staticAssets()
	if err != nil { // only if the embed itself is broken; New reports it at startup
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		})
	}
	return a.handler()
}

// Static serves the renderer's assets: the built-in ones, the operator's
// web.static_dir over them, the JavaScript client and brand.css.
func (r *Renderer) Static() http.Handler { return r.assets.handler() }

func (a *assets) handler() http.Handler {
	files := http.FileServerFS(a.fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !allowRead(w, req) {
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+req.URL.Path), "/")
		etag, ok := a.etags[name]
		if !ok || strings.HasSuffix(req.URL.Path, "/") {
			http.NotFound(w, req) // unknown file, or a directory: no listings
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if b, ok := a.memory[name]; ok {
			http.ServeContent(w, req, name, time.Time{}, bytes.NewReader(b)) // Content-Type by extension
			return
		}
		files.ServeHTTP(w, req)
	})
}

// Demo serves the demo frontend (static/demo.html) for GET and HEAD; mount it
// at /demo/. Its script and stylesheet come from /static/. It answers with the
// page whatever the path below the mount point is.
func Demo() http.Handler {
	a, err := staticAssets()
	var page []byte
	if err == nil {
		page, err = fs.ReadFile(a.fsys, "demo.html")
	}
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		})
	}
	etag := a.etags["demo.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !allowRead(w, req) {
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, req, "demo.html", time.Time{}, bytes.NewReader(page))
	})
}
