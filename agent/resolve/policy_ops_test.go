package resolve_test

import (
	"slices"
	"testing"

	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/config"
)

// TestConfigOperationsAreResolveOps: the operations config accepts in a
// policy rule are exactly the resolver's.
func TestConfigOperationsAreResolveOps(t *testing.T) {
	t.Parallel()
	want := []string{string(resolve.OpResolve), string(resolve.OpCheck)}
	if got := config.Operations(); !slices.Equal(got, want) {
		t.Fatalf("config accepts operations %q, the resolver has %q", got, want)
	}
}
