package resolve_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
)

// pooledFetcher is a Fetcher with a connection pool, as *ccp.Client has.
type pooledFetcher struct {
	*agenttest.Fetcher
	closed *atomic.Int32
}

func (p pooledFetcher) Get(ctx context.Context, req ccp.Request) (*ccp.Account, error) {
	return p.Fetcher.Get(ctx, req)
}

func (p pooledFetcher) CloseIdleConnections() { p.closed.Add(1) }

// TestCloseReleasesFetchers: a reload swaps in a new Resolver and closes
// the old one. Closing must let go of the old one's CCP connections (a pool
// per store and application, with two goroutines per connection), not leave
// them open until their idle timeout; with a reload every 30 s the soak saw
// the connections to CCP double.
func TestCloseReleasesFetchers(t *testing.T) {
	var closed atomic.Int32
	e := newEnv(t, func(o *resolve.Options) {
		inner := o.NewFetcher
		o.NewFetcher = func(s *state.Store, a *state.Application) (resolve.Fetcher, error) {
			f, err := inner(s, a)
			if err != nil {
				return nil, err
			}
			return pooledFetcher{Fetcher: f.(*agenttest.Fetcher), closed: &closed}, nil
		}
	})
	r := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap"}})
	r.Wipe()
	if closed.Load() != 0 {
		t.Fatalf("connections closed %d times before Close", closed.Load())
	}
	e.r.Close()
	if closed.Load() != 1 {
		t.Fatalf("Close closed the fetcher's connections %d times, want 1", closed.Load())
	}
	// Resolving after Close still works (a late request of a reload's
	// grace), and a second Close is harmless.
	r = e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap"}})
	if err := r.Items[0].Err; err != nil {
		t.Errorf("resolve after Close: %v", err)
	}
	r.Wipe()
	e.r.Close()
}
