package daemon

import (
	"fmt"
	"sort"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/agent/version"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/keystore"
)

// buildStatus assembles /v1/status from the state, the resolver's store
// health and what the agent took at start.
func buildStatus(snap *state.Snapshot, r *resolve.Resolver, info keystore.Info, keyID string, rs restartSettings, hr harden.Report, started time.Time) apitype.Status {
	now := time.Now()
	s := apitype.Status{
		Version:   version.Version,
		StartedAt: started,
		UptimeMS:  now.Sub(started).Milliseconds(),
		Socket:    rs.Socket,
		KeyStore: apitype.KeyStoreStatus{
			Backend: info.Backend, HardwareBacked: info.HardwareBacked, KeyID: keyID, Detail: info.Detail, NeedsReenroll: snap.NeedsReenroll,
		},
		Applications: []apitype.ApplicationStatus{},
		Stores:       []apitype.StoreStatus{},
		Credentials:  []apitype.CredentialStatus{},
		Rejected:     []apitype.RejectedDelivery{},
		Hardening:    hr,
	}
	for _, a := range snap.Applications {
		s.Applications = append(s.Applications, apitype.ApplicationStatus{
			AppID: a.AppID, Owner: a.Owner, Serial: a.Serial, Fingerprint: a.Fingerprint, NotBefore: a.NotBefore, NotAfter: a.NotAfter,
			Expired: now.After(a.NotAfter), ExpiresSoon: a.NotAfter.Sub(now) < rs.Inbox.ExpiryWarning,
		})
	}
	sort.Slice(s.Applications, func(i, j int) bool {
		return state.Key(s.Applications[i].Owner, s.Applications[i].AppID) < state.Key(s.Applications[j].Owner, s.Applications[j].AppID)
	})
	health := r.Health()
	for _, st := range snap.Stores {
		ss := apitype.StoreStatus{Name: st.Name, Owner: st.Owner, AppID: st.AppID, Servers: st.Servers, CacheTTL: st.CacheTTL, CacheMaxStale: st.CacheMaxStale}
		if h, ok := health[state.Key(st.Owner, st.Name)]; ok {
			ss.LastSuccess, ss.LastError, ss.LastErrorClass, ss.LastErrorAt = h.LastSuccess, h.LastError, string(h.LastErrorClass), h.LastErrorAt
			for _, sv := range h.Servers {
				ss.ServerHealth = append(ss.ServerHealth, apitype.ServerStatus{
					Server: sv.Server, Successes: sv.Successes, Errors: sv.Failures,
					LastSuccess: sv.LastSuccess, LastErrorAt: sv.LastError, LastErrorClass: string(sv.LastErrorClass), LastErrorCode: sv.LastErrorCode,
					TLS12Fallback: sv.TLS12Fallback,
				})
			}
		}
		s.Stores = append(s.Stores, ss)
	}
	sort.Slice(s.Stores, func(i, j int) bool {
		return state.Key(s.Stores[i].Owner, s.Stores[i].Name) < state.Key(s.Stores[j].Owner, s.Stores[j].Name)
	})
	for _, c := range snap.Credentials {
		s.Credentials = append(s.Credentials, apitype.CredentialStatus{Name: c.Name, Owner: c.Owner, Store: c.Store})
	}
	sort.Slice(s.Credentials, func(i, j int) bool {
		return state.Key(s.Credentials[i].Owner, s.Credentials[i].Name) < state.Key(s.Credentials[j].Owner, s.Credentials[j].Name)
	})
	for _, rj := range snap.Rejected {
		s.Rejected = append(s.Rejected, apitype.RejectedDelivery{File: rj.File, DeliveryID: rj.DeliveryID, Kind: rj.Kind, Reason: rj.Reason, At: rj.At})
	}
	switch {
	case snap.NeedsReenroll != "":
		s.Problems = append(s.Problems, "the machine key cannot be used; re-enrol this machine (credagent enroll --rotate)")
	case len(snap.Applications) == 0:
		s.Problems = append(s.Problems, "no application certificate has been delivered yet")
	case len(snap.Stores) == 0:
		s.Problems = append(s.Problems, "no CCP store has been delivered yet")
	}
	if snap.KeyProblem != "" {
		s.Problems = append(s.Problems, snap.KeyProblem)
	}
	s.Problems = append(s.Problems, snap.InboxProblems...)
	for _, a := range s.Applications {
		if a.Expired {
			s.Problems = append(s.Problems, fmt.Sprintf("the certificate of application %s expired on %s", a.AppID, a.NotAfter.Format(time.DateOnly)))
		}
	}
	s.Ready = snap.NeedsReenroll == "" && len(snap.Applications) > 0 && len(snap.Stores) > 0
	return s
}
