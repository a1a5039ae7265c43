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

// pooledFetcher is a Fetcher with a connection pool that can only close
// its idle connections.
type pooledFetcher struct {
	*agenttest.Fetcher
	closed *atomic.Int32
}

func (p pooledFetcher) Get(ctx context.Context, req ccp.Request) (*ccp.Account, error) {
	return p.Fetcher.Get(ctx, req)
}

func (p pooledFetcher) CloseIdleConnections() { p.closed.Add(1) }

// retiringFetcher also has Retire, as *ccp.Client has, which the Resolver
// must prefer: it closes the connections in use too, once their requests
// end.
type retiringFetcher struct {
	pooledFetcher
	retired *atomic.Int32
}

func (r retiringFetcher) Retire() { r.retired.Add(1) }

// TestCloseReleasesFetchers: a reload swaps in a new Resolver and closes
// the old one, and a delivery of a new certificate or store replaces a
// fetcher. Either must let go of the old fetcher's CCP connections (a pool
// per store and application, with two goroutines per connection), not leave
// them open until their idle timeout; with a reload every 30 s the soak saw
// the connections to CCP double.
func TestCloseReleasesFetchers(t *testing.T) {
	for _, tt := range []struct {
		name string
		// retire says whether the fetcher has Retire.
		retire bool
	}{
		{"fetcher that can only close idle connections", false},
		{"fetcher with Retire", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var closed, retired atomic.Int32
			e := newEnv(t, func(o *resolve.Options) {
				inner := o.NewFetcher
				o.NewFetcher = func(s *state.Store, a *state.Application) (resolve.Fetcher, error) {
					f, err := inner(s, a)
					if err != nil {
						return nil, err
					}
					p := pooledFetcher{Fetcher: f.(*agenttest.Fetcher), closed: &closed}
					if tt.retire {
						return retiringFetcher{pooledFetcher: p, retired: &retired}, nil
					}
					return p, nil
				}
			})
			released := func() int32 {
				if tt.retire {
					if closed.Load() != 0 {
						t.Errorf("CloseIdleConnections called %d times on a fetcher with Retire", closed.Load())
					}
					return retired.Load()
				}
				return closed.Load()
			}
			resolveOK := func(what string) {
				t.Helper()
				r := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap"}})
				if err := r.Items[0].Err; err != nil {
					t.Fatalf("resolve %s: %v", what, err)
				}
				r.Wipe()
			}
			resolveOK("first")
			if n := released(); n != 0 {
				t.Fatalf("connections released %d times before anything replaced the fetcher", n)
			}
			// A new certificate for the application: the next
			// resolution builds a new fetcher and releases the old one.
			e.st.Update(func(s *state.Snapshot) {
				a := *s.Applications["RPA"]
				a.Fingerprint = "fp2"
				s.Applications["RPA"] = &a
			})
			resolveOK("after a new certificate")
			if n := released(); n != 1 {
				t.Fatalf("a replaced fetcher was released %d times, want 1", n)
			}
			// A reload retires the swapped-out Resolver's fetchers at
			// once and closes it after a grace.
			e.r.RetireFetchers()
			if n := released(); n != 2 {
				t.Fatalf("after RetireFetchers, fetchers released %d times, want 2", n)
			}
			resolveOK("after RetireFetchers")
			e.r.Close()
			if n := released(); n != 3 {
				t.Fatalf("after Close, fetchers released %d times, want 3", n)
			}
			// Resolving after Close still works (a late request of a
			// reload's grace), and a second Close is harmless.
			resolveOK("after Close")
			e.r.Close()
		})
	}
}
