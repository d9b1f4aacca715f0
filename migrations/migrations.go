// Package migrations holds the broker's schema as ordered, forward-only SQL
// files, embedded in the binary and applied by storage.Migrate.
package migrations

import "embed"

// FS holds the NNNN_name.sql files, applied in order.
//
//go:embed *.sql
var FS embed.FS
