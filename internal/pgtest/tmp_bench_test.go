package pgtest

import (
	"context"
	"testing"
	"time"
)

func TestTmpBreakdown(t *testing.T) {
	admin := adminURL(t)
	ctx := context.Background()
	var tc, tcr, td time.Duration
	n := 20
	for range n {
		s := time.Now()
		var x int
		queryRow(ctx, admin, "SELECT 1", &x)
		tc += time.Since(s)
		name := "x_" + randomHex()
		s = time.Now()
		if err := exec(ctx, admin, "CREATE DATABASE "+name+" TEMPLATE template0"+shared.strategy); err != nil {
			t.Fatal(err)
		}
		tcr += time.Since(s)
		s = time.Now()
		dropDatabase(ctx, admin, name)
		td += time.Since(s)
	}
	t.Logf("connect+select %v, create %v, drop %v", tc/time.Duration(n), tcr/time.Duration(n), td/time.Duration(n))
}
