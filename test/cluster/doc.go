// Package cluster tests the broker the way operators run many of them, with
// the real parts, each started by the tests themselves from the Debian
// packages: brokers as separate processes (./cmd/broker built once, static)
// behind HAProxy, PgBouncer in transaction pooling mode, a PostgreSQL 15
// primary with a streaming replica that is promoted mid-load, a rolling
// restart under load, and the container image built with buildah.
//
// A test skips, loudly, only when a program it needs (haproxy, pgbouncer,
// buildah, the PostgreSQL server binaries) is not installed and CI is not
// set; under CI=true a missing program is a failure (.ci/run installs them).
// Every process a test starts is stopped at its end, and dies with the test
// binary should that die first. Only 127.0.0.1 is used.
//
// docs/operating.md reports what these tests measure.
package cluster
