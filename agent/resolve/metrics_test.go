package resolve_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/platform/localsock"
)

type countingRecorder struct {
	mu sync.Mutex
	n  map[string]int // op/outcome/class
}

func (c *countingRecorder) Resolution(op, outcome, class string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[op+"/"+outcome+"/"+class]++
}

// TestMetricsCountEveryName: each name's outcome is recorded once, and
// refusals are all counted even when the audit sums them up.
func TestMetricsCountEveryName(t *testing.T) {
	rec := &countingRecorder{n: map[string]int{}}
	e := newEnv(t, func(o *resolve.Options) { o.Metrics = rec })
	ctx := context.Background()
	res := e.r.Resolve(ctx, runner, resolve.Request{RunID: "r", Names: []string{"sap", "gone"}})
	res.Wipe()
	stranger := &localsock.Identity{UID: 4242, GID: 4242, Verified: true}
	for range 3 {
		e.r.Resolve(ctx, stranger, resolve.Request{RunID: "r", Names: []string{"sap", "db"}})
	}
	want := map[string]int{
		"resolve/ok/":               1,
		"resolve/error/not_found":   1,
		"resolve/refused/forbidden": 6,
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for k, v := range want {
		if rec.n[k] != v {
			t.Errorf("%s: %d, want %d (all: %v)", k, rec.n[k], v, rec.n)
		}
	}
	if refusedAudited := len(e.records(t)) - 2; refusedAudited >= 6 {
		t.Logf("the audit kept %d refusal records", refusedAudited)
	}
}
