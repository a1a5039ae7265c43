package resolve_test

import (
	"context"
	"testing"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
)

// statsFetcher reports servers, as *ccp.Client does.
type statsFetcher struct {
	*agenttest.Fetcher
	servers []ccp.ServerStats
}

func (f statsFetcher) Stats() ccp.Stats { return ccp.Stats{Servers: f.servers} }

// TestHealthServers: status shows each store's servers as its CCP client
// saw them, once the store has been used, and only for fetchers that say.
func TestHealthServers(t *testing.T) {
	servers := []ccp.ServerStats{{Server: "https://ccp1.test", Successes: 1}, {Server: "https://ccp2.test", Failures: 2, TLS12Fallback: true}}
	for _, tt := range []struct {
		name  string
		stats bool
		want  int
	}{
		{"a fetcher that reports its servers", true, 2},
		{"a fetcher that does not", false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *resolve.Options) {
				inner := o.NewFetcher
				o.NewFetcher = func(s *state.Store, a *state.Application) (resolve.Fetcher, error) {
					f, err := inner(s, a)
					if err != nil || !tt.stats {
						return f, err
					}
					return statsFetcher{Fetcher: f.(*agenttest.Fetcher), servers: servers}, nil
				}
			})
			if h, ok := e.r.Health()["prod"]; ok && len(h.Servers) != 0 {
				t.Fatalf("servers before the store was used: %+v", h.Servers)
			}
			r := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap"}})
			if err := r.Items[0].Err; err != nil {
				t.Fatal(err)
			}
			r.Wipe()
			h := e.r.Health()["prod"]
			if len(h.Servers) != tt.want {
				t.Fatalf("Health servers = %+v, want %d", h.Servers, tt.want)
			}
			if tt.want > 0 && (h.Servers[1].Server != "https://ccp2.test" || h.Servers[1].Failures != 2 || !h.Servers[1].TLS12Fallback) {
				t.Errorf("Health servers = %+v, want them as the fetcher reported", h.Servers)
			}
			if h.LastSuccess.IsZero() {
				t.Errorf("the store's own health is lost: %+v", h)
			}
		})
	}
}
