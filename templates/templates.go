// Package templates holds the broker's HTML templates and static assets,
// embedded into the binary so that a deployment is one file.
//
// The top-level *.html files are html/template sources rendered by
// internal/web; static/ is served as-is under /static/ (and static/demo.html
// under /demo/). Nothing here may carry inline styles or inline scripts: the
// broker sends Content-Security-Policy "default-src 'self'".
package templates

import "embed"

// FS holds the page templates (*.html) and the static assets (static/).
//
//go:embed *.html static
var FS embed.FS
