package daemon

import (
	"context"
	"sort"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/service/storeprobe"
	"github.com/credagent/credagent/agent/state"
)

// probeStores runs doctor's probe (storeprobe) of every store with its application's
// certificate, in this process, because the private keys never leave it,
// and with the CCP client options a resolution would use.
func probeStores(ctx context.Context, snap *state.Snapshot, ccpDefaults ccp.Options) []apitype.ProbeResult {
	names := make([]string, 0, len(snap.Stores))
	for n := range snap.Stores {
		names = append(names, n)
	}
	sort.Strings(names)
	out := []apitype.ProbeResult{}
	for _, n := range names {
		st := snap.Stores[n]
		ds := storeprobe.Store{
			Name: st.Name, AppID: st.AppID, Safe: st.Safe, Folder: st.Folder, HealthObject: st.HealthObject,
			Options: ccpOptions(st, ccpDefaults),
		}
		// The owner's own application only (delivery SPEC section 9).
		if app := snap.Applications[state.Key(st.Owner, st.AppID)]; app != nil && app.Owner == st.Owner {
			ds.ClientCert = app.Certificate
		}
		out = append(out, storeprobe.ProbeStore(ctx, ds)...)
	}
	return out
}
