package resolve

import (
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// auditRecord is one resolution of one name. It has no field for a
// password, by construction.
type auditRecord struct {
	start   time.Time
	caller  *localsock.Identity
	req     Request
	name    string
	cred    *state.Credential
	store   *state.Store
	ccpReq  *ccp.Request
	outcome string // ok, error, refused
	err     *Error
	// staleCause is the CCP error that made a stale cached value be served.
	staleCause  *Error
	latency     time.Duration
	server      string
	correlation string
	fromCache   bool
	stale       bool
	cacheAge    time.Duration
}

func (a *auditRecord) fillFromState(snap *state.Snapshot) {
	a.cred = snap.Credentials[a.name]
	if a.cred != nil {
		a.store = snap.Stores[a.cred.Store]
	}
}

// writeAudit writes the record. Fields:
//
//	time, event ("resolution"), op, outcome (ok, error, refused),
//	caller_uid or caller_sid, caller_user, caller_pid, caller_exe,
//	run_id, flow_id, credential, owner (when it has one), store, app_id, safe, folder, object
//	(query_format when the credential is a query), error_class, error_code,
//	error, rule, ccp_server, latency_ms, correlation_id, from_cache, stale,
//	cache_age_ms.
func (r *Resolver) writeAudit(a auditRecord) {
	lvl := zerolog.InfoLevel
	if a.outcome != "ok" || a.stale {
		lvl = zerolog.WarnLevel
	}
	ev := r.audit.WithLevel(lvl)
	if ev == nil {
		return
	}
	ev.Time("time", a.start).Str("event", "resolution").Str("op", string(a.req.Op)).Str("outcome", a.outcome)
	if c := a.caller; c != nil {
		if c.SID != "" {
			ev.Str("caller_sid", c.SID)
		} else {
			ev.Uint32("caller_uid", c.UID)
		}
		ev.Str("caller_user", c.Username).Int("caller_pid", c.PID).Str("caller_exe", c.Exe)
	}
	ev.Str("run_id", a.req.RunID).Str("flow_id", a.req.FlowID).Str("credential", a.name)
	if a.cred != nil && a.cred.Owner != "" {
		ev.Str("owner", a.cred.Owner)
	}
	if a.store != nil {
		ev.Str("store", a.store.Name).Str("app_id", a.store.AppID)
	}
	switch {
	case a.ccpReq != nil && a.ccpReq.Query != "":
		ev.Str("query_format", first(a.ccpReq.QueryFormat, "Exact"))
	case a.ccpReq != nil:
		ev.Str("safe", a.ccpReq.Safe).Str("folder", a.ccpReq.Folder).Str("object", a.ccpReq.Object)
	case a.cred != nil:
		safe, folder := a.cred.Safe, a.cred.Folder
		if a.store != nil {
			safe, folder = first(safe, a.store.Safe), first(folder, a.store.Folder)
		}
		ev.Str("safe", safe).Str("folder", folder).Str("object", a.cred.Object)
	}
	if e := a.err; e != nil {
		ev.Str("error_class", string(e.Class)).Str("error_code", e.Code).Str("error", e.Message)
		if e.Rule != "" {
			ev.Str("rule", e.Rule)
		}
		a.server = first(a.server, e.Server)
		a.correlation = first(a.correlation, e.CorrelationID)
	}
	if e := a.staleCause; e != nil {
		ev.Str("error_class", string(e.Class)).Str("error_code", e.Code).Str("error", e.Message)
		a.correlation = first(a.correlation, e.CorrelationID)
	}
	ev.Str("ccp_server", a.server).
		Float64("latency_ms", float64(a.latency.Microseconds())/1000).
		Str("correlation_id", a.correlation).
		Bool("from_cache", a.fromCache)
	if a.fromCache {
		ev.Bool("stale", a.stale).Int64("cache_age_ms", a.cacheAge.Milliseconds())
	}
	ev.Msg("resolution")
}
