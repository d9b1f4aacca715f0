// Package jsclient embeds the JavaScript client (index.js) so that the
// broker serves the very file the npm package ships, at
// /static/broker-client.js.
package jsclient

import _ "embed"

// Source is index.js.
//
//go:embed index.js
var Source []byte
