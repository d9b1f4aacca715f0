package pglocal

// Test access to unexported helpers (the tests live in package pglocal_test,
// because they use pgtest, which imports pglocal).
var (
	FindBinariesIn = findBinaries
	ProcessAlive   = alive
)
