package templates

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The demo frontend imports the JavaScript client from
// /static/broker-client.js; that file is clients/js/index.js, byte for byte.
func TestBrokerClientMatchesPackage(t *testing.T) {
	served, err := FS.ReadFile("static/broker-client.js")
	if err != nil {
		t.Fatalf("static/broker-client.js is not embedded: %v", err)
	}
	pkg, err := os.ReadFile(filepath.Join("..", "clients", "js", "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, pkg) {
		t.Fatal("templates/static/broker-client.js differs from clients/js/index.js; run: cp clients/js/index.js templates/static/broker-client.js")
	}
}
