// Package resolve performs one resolution: a local caller asks for named
// credentials, and the Resolver decides whether it may have them, fetches
// them from CCP with the right application certificate, and writes an audit
// record for each name, allowed or refused.
//
// The order is fixed: the per-caller rate limit first (so a caller that is
// refused still cannot hammer the agent), then the policy, then the lookups
// in the current state snapshot, then the CCP calls. No CCP call happens for
// a request that is refused.
//
// Passwords are returned in the Result's accounts; the caller writes them out
// and then calls Result.Wipe. Nothing in this package logs a password: the
// audit record carries names, identities and outcomes only.
//
// Caching is off unless a store opts in with CacheTTL. A cached value is
// served while younger than CacheTTL; when CCP is unreachable, it may be
// served until it is CacheMaxStale old, and never after. Every answer says
// whether it came from the cache and how old it is.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// Fetcher fetches one account from CCP. *ccp.Client satisfies it. Errors
// should be *ccp.Error so that they carry a class.
type Fetcher interface {
	Get(ctx context.Context, req ccp.Request) (*ccp.Account, error)
}

// FetcherFactory builds the Fetcher for one store and application identity.
// The Resolver calls it once per (store, AppID) and again only when the
// store's Seq or the application certificate's Fingerprint changes. If the
// replaced Fetcher has a CloseIdleConnections method, it is called.
type FetcherFactory func(store *state.Store, app *state.Application) (Fetcher, error)

// Op is what the caller wants done.
type Op string

const (
	// OpResolve returns the credentials.
	OpResolve Op = "resolve"
	// OpCheck resolves the credentials but returns only success or the
	// error. It never uses the cache: it tests the path to CCP.
	OpCheck Op = "check"
)

// Ops are every operation, in the order config lists them.
func Ops() []Op { return []Op{OpResolve, OpCheck} }

// Request is one request from a local caller.
type Request struct {
	RunID  string
	FlowID string
	Names  []string
	Op     Op
}

// Error is a typed failure. It never carries a secret.
type Error struct {
	Class         apitype.Class
	Code          string
	Message       string
	CorrelationID string
	Server        string
	// Rule names the policy rule that refused (apitype.ClassForbidden), or "" when
	// no rule matched the caller.
	Rule string
	// RetryAfter is when a rate-limited caller may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := "resolve: " + string(e.Class)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrorClass returns e.Class: *Error is an apitype.Classed error, so
// apitype.ClassOf, IsForbidden and IsRateLimited see it.
func (e *Error) ErrorClass() apitype.Class { return e.Class }

// Item is the outcome for one name.
type Item struct {
	Name string
	// Account is set on success. It belongs to the caller, who must Wipe
	// it (Result.Wipe does) after use.
	Account *ccp.Account
	// FromCache says the account came from the store's cache; CacheAge is
	// how old it is. Stale says it was served past CacheTTL because CCP
	// could not be reached.
	FromCache bool
	Stale     bool
	CacheAge  time.Duration
	Err       *Error
}

// Result is the outcome of a Request: either Err (the whole request was
// refused, and Items is empty) or one Item per requested name, in order.
type Result struct {
	Err   *Error
	Items []Item
}

// Wipe zeroes every password in r.
func (r *Result) Wipe() {
	for i := range r.Items {
		if a := r.Items[i].Account; a != nil {
			a.Wipe()
		}
	}
}

// Options configure a Resolver.
type Options struct {
	// State is where credentials, stores and applications are looked up.
	State *state.State
	// NewFetcher builds CCP clients.
	NewFetcher FetcherFactory
	// Policy decides who may resolve what. No rules: everything is refused.
	Policy Policy
	// RatePerSecond and RateBurst bound each caller (uid or SID): one token
	// per credential name. RatePerSecond <= 0 disables the limit.
	RatePerSecond float64
	RateBurst     int
	// FailRequestOnPasswordChange is passed to CCP (see ccp.Request).
	FailRequestOnPasswordChange bool
	// Audit receives one record per name. Give it its own destination; it
	// should not add a timestamp of its own (the record has "time").
	Audit zerolog.Logger
	// Log is the operational log.
	Log zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LookupGroup maps a group name in the policy to its ID (a gid on Linux,
	// a SID on Windows); nil means os/user.
	LookupGroup func(name string) (string, error)
	// RefusalWindow is how long one caller's refusals are summed up in one
	// audit record after the first is recorded in full; 0 means
	// DefaultRefusalWindow.
	RefusalWindow time.Duration
	// FailClosed, if set and returning a reason, refuses every resolution
	// with apitype.ClassFeedStale (agent/feed, feed.fail_closed_after).
	FailClosed func() string
	// Metrics, if set, counts each name's outcome and latency.
	Metrics Recorder
}

// Recorder receives one call per name resolved or refused, with the outcome
// (ok, error, refused) and the error class ("" on success).
// *metrics.Registry satisfies it.
type Recorder interface {
	Resolution(op, outcome, class string, latency time.Duration)
}

// Resolver answers requests. It is safe for concurrent use.
type Resolver struct {
	state      *state.State
	newFetcher FetcherFactory
	rules      []*rule
	limiter    *limiter
	failOnPwCh bool
	audit      zerolog.Logger
	log        zerolog.Logger
	now        func() time.Time
	failClosed func() string
	metrics    Recorder

	fmu      sync.Mutex
	fetchers map[string]*fetcherEntry

	cache    *cache
	refusals *refusals

	hmu    sync.Mutex
	health map[string]*StoreHealth
}

// New returns a Resolver. It fails if a required option is missing.
func New(opts Options) (*Resolver, error) {
	if opts.State == nil || opts.NewFetcher == nil {
		return nil, errors.New("resolve.New: State and NewFetcher are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LookupGroup == nil {
		opts.LookupGroup = func(name string) (string, error) {
			g, err := user.LookupGroup(name)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		}
	}
	r := &Resolver{
		state:      opts.State,
		newFetcher: opts.NewFetcher,
		failOnPwCh: opts.FailRequestOnPasswordChange,
		audit:      opts.Audit,
		log:        opts.Log,
		now:        opts.Now,
		failClosed: opts.FailClosed,
		fetchers:   map[string]*fetcherEntry{},
		cache:      newCache(),
		health:     map[string]*StoreHealth{},
		metrics:    opts.Metrics,
	}
	r.refusals = newRefusals(opts.RefusalWindow, r.writeRefusalSummary)
	r.rules = compilePolicy(opts.Policy, opts.LookupGroup, opts.Log)
	if opts.RatePerSecond > 0 {
		r.limiter = newLimiter(opts.RatePerSecond, opts.RateBurst)
	}
	return r, nil
}

// Close wipes the cache, writes the pending summaries of refusals, and
// retires the fetchers: their idle CCP connections are closed now and the
// others when their requests end, so that a Resolver replaced at a reload
// does not keep its pools open until their idle timeout. A fetcher
// replaced by a delivery is retired the same way. Resolving after Close
// still works.
func (r *Resolver) Close() {
	r.cache.clear()
	r.refusals.flush()
	r.RetireFetchers()
}

// RetireFetchers retires the fetchers it has built so far (see retire) and
// changes nothing else. A Resolver swapped out at a reload calls it at once,
// so that its CCP connections close as its in-flight requests end, and
// Close once they have had their grace. Resolving after it still works.
func (r *Resolver) RetireFetchers() {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	for _, e := range r.fetchers {
		retire(e.f)
	}
}

// retire releases the connections of a fetcher that has been replaced or
// whose Resolver is closed: all of them as their requests end, for a
// fetcher that can (ccp.Client.Retire), else the idle ones.
func retire(f Fetcher) {
	switch c := f.(type) {
	case interface{ Retire() }:
		c.Retire()
	case interface{ CloseIdleConnections() }:
		c.CloseIdleConnections()
	}
}

// Admit reports whether some policy rule matches caller, before anything
// else is done for its request: nil if one does, else the refusal to
// answer, which is audited like any other (summed up per caller). The local
// API calls it before the caller takes any shared resource.
func (r *Resolver) Admit(caller *localsock.Identity, op Op) *Error {
	for _, ru := range r.rules {
		if ru.matches(caller) {
			return nil
		}
	}
	key := "an unidentified caller"
	if caller != nil {
		key = caller.Key()
	}
	e := &Error{Class: apitype.ClassForbidden, Message: fmt.Sprintf("no rule matched the caller (%s)", key)}
	r.refuseAll(caller, Request{Op: op}, r.now(), e)
	return e
}

// Grants reports whether the rule that decides for caller (the first that
// matches it) grants the credential name of owner ("" for the unowned
// namespace), for some operation: the name is among its credentials and the
// owner among its owners, as for a resolution. It records nothing.
func (r *Resolver) Grants(caller *localsock.Identity, owner, name string) bool {
	for _, ru := range r.rules {
		if ru.matches(caller) {
			return slices.Contains(ru.owners, owner) && ru.grants(name)
		}
	}
	return false
}

// Resolve answers req for caller. It never returns a nil-error Result with
// fewer items than names.
func (r *Resolver) Resolve(ctx context.Context, caller *localsock.Identity, req Request) Result {
	start := r.now()
	if req.Op == "" {
		req.Op = OpResolve
	}
	if caller == nil {
		return r.refuseAll(caller, req, start, &Error{Class: apitype.ClassForbidden, Message: "caller not identified"})
	}
	if r.limiter != nil {
		if wait, ok := r.limiter.allow(caller.Key(), len(req.Names), start); !ok {
			return r.refuseAll(caller, req, start, &Error{
				Class: apitype.ClassRateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("rate limit for %s exceeded; retry in %v", caller.Key(), wait.Round(time.Millisecond)),
			})
		}
	}
	ru, e := r.authorize(caller, req)
	if e != nil {
		return r.refuseAll(caller, req, start, e)
	}

	snap := r.state.Load()
	if snap.NeedsReenroll != "" {
		return r.refuseAll(caller, req, start, &Error{Class: apitype.ClassNeedsReenroll,
			Message: "this machine cannot open its credentials until it is re-enrolled: " + snap.NeedsReenroll})
	}
	if r.failClosed != nil {
		if why := r.failClosed(); why != "" {
			return r.refuseAll(caller, req, start, &Error{Class: apitype.ClassFeedStale, Message: why})
		}
	}
	res := Result{Items: make([]Item, len(req.Names))}
	if len(req.Names) == 1 {
		res.Items[0] = r.one(ctx, snap, ru, caller, req, req.Names[0])
		return res
	}
	var wg sync.WaitGroup
	for i, name := range req.Names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Items[i] = r.one(ctx, snap, ru, caller, req, name)
		}()
	}
	wg.Wait()
	return res
}

// refuseAll refuses a whole request. The first refused request of a caller
// in a refusal window is audited in full, one record per name (one record
// when the names were not read); later ones are counted into the window's
// summary (see refusals).
func (r *Resolver) refuseAll(caller *localsock.Identity, req Request, start time.Time, e *Error) Result {
	if r.metrics != nil {
		// Every refusal counts, also those the audit sums up.
		for range max(1, len(req.Names)) {
			r.metrics.Resolution(string(orOp(req.Op)), "refused", string(e.Class), r.now().Sub(start))
		}
	}
	if !r.refusals.note(caller, len(req.Names), e.Class, start) {
		return Result{Err: e}
	}
	lat := r.now().Sub(start)
	snap := r.state.Load()
	names := req.Names
	if len(names) == 0 {
		names = []string{""}
	}
	for _, name := range names {
		rec := auditRecord{caller: caller, req: req, name: name, outcome: "refused", err: e, latency: lat, start: start}
		rec.fillFromState(snap)
		r.writeAudit(rec)
	}
	return Result{Err: e}
}

// one resolves a single name that rule ru authorised.
func (r *Resolver) one(ctx context.Context, snap *state.Snapshot, ru *rule, caller *localsock.Identity, req Request, name string) Item {
	start := r.now()
	it := Item{Name: name}
	rec := auditRecord{caller: caller, req: req, name: name, start: start}
	defer func() {
		rec.latency = r.now().Sub(start)
		rec.fromCache, rec.cacheAge, rec.stale = it.FromCache, it.CacheAge, it.Stale
		class := ""
		if it.Err != nil {
			rec.outcome, rec.err = "error", it.Err
			class = string(it.Err.Class)
		} else {
			rec.outcome = "ok"
			rec.server, rec.correlation = it.Account.Server, it.Account.CorrelationID
		}
		if r.metrics != nil {
			r.metrics.Resolution(string(req.Op), rec.outcome, class, rec.latency)
		}
		r.writeAudit(rec)
	}()

	cred, store, app, e := lookup(snap, ru.owners, name)
	rec.cred, rec.store = cred, store
	if e != nil {
		it.Err = e
		return it
	}
	ccpReq := ccp.Request{
		AppID:                       store.AppID,
		Safe:                        first(cred.Safe, store.Safe),
		Folder:                      first(cred.Folder, store.Folder),
		Object:                      cred.Object,
		Query:                       cred.Query,
		QueryFormat:                 cred.QueryFormat,
		Reason:                      SanitizeReason(req.RunID),
		FailRequestOnPasswordChange: r.failOnPwCh,
	}
	rec.ccpReq = &ccpReq

	useCache := req.Op == OpResolve && store.CacheTTL > 0
	ck := cacheKey{owner: cred.Owner, store: store.Name, cred: cred.Name, storeSeq: store.Seq, credSeq: cred.Seq, appFP: app.Fingerprint}
	if useCache {
		if acct, age, ok := r.cache.get(ck, start, store.CacheTTL); ok {
			it.Account, it.FromCache, it.CacheAge = acct, true, age
			return it
		}
	}

	f, err := r.fetcher(store, app)
	if err != nil {
		it.Err = &Error{Class: apitype.ClassAppCertUnreadable, Message: "building the CCP client: " + err.Error()}
		r.noteHealth(store, it.Err, start)
		return it
	}
	acct, err := f.Get(ctx, ccpReq)
	if err == nil && acct == nil {
		err = &ccp.Error{Class: apitype.ClassServerError, Message: "CCP client returned no account"}
	}
	if err != nil {
		it.Err = toError(ctx, err)
		r.noteHealth(store, it.Err, start)
		if useCache && unreachable(it.Err.Class) && store.CacheMaxStale > 0 {
			if acct, age, ok := r.cache.get(ck, start, store.CacheMaxStale); ok {
				rec.staleCause = it.Err
				it.Err = nil
				it.Account, it.FromCache, it.Stale, it.CacheAge = acct, true, true, age
			}
		}
		return it
	}
	r.noteHealth(store, nil, start)
	if useCache && !acct.PasswordChangeInProcess {
		r.cache.put(ck, acct, start, max(store.CacheTTL, store.CacheMaxStale))
	}
	it.Account = acct
	return it
}

// quoteAll quotes each of ss and joins them with commas.
func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lookup finds the credential name among the owners' credentials (the
// namespaces of the rule that authorised the caller), then its store and
// application within the same owner's namespace (delivery SPEC section 9).
// It never falls back to another owner's store or application: a
// credential of owner A is never fetched with owner B's certificate, even
// when B has a store or application of the same name or AppID.
func lookup(snap *state.Snapshot, owners []string, name string) (*state.Credential, *state.Store, *state.Application, *Error) {
	var cred *state.Credential
	var found []string
	for _, o := range owners {
		if c := snap.Credentials[state.Key(o, name)]; c != nil && c.Owner == o && c.Name == name {
			cred = c
			found = append(found, o)
		}
	}
	switch {
	case len(found) == 0:
		return nil, nil, nil, &Error{Class: apitype.ClassUnknownCredential, Message: fmt.Sprintf("no credential named %q has been delivered to this machine%s", name, ownersPhrase(owners))}
	case len(found) > 1:
		return nil, nil, nil, &Error{Class: apitype.ClassForbidden, Message: fmt.Sprintf("credential %q is delivered by several owners this caller may use (%s); give their runners separate policy rules", name, quoteAll(found))}
	}
	owner := cred.Owner
	store := snap.Stores[state.Key(owner, cred.Store)]
	if store == nil || store.Owner != owner {
		return cred, nil, nil, &Error{Class: apitype.ClassStoreMisconfigured, Message: fmt.Sprintf("credential %q uses store %q, which has not been delivered%s", name, cred.Store, ofOwner(owner))}
	}
	app := snap.Applications[state.Key(owner, store.AppID)]
	if app == nil || app.Owner != owner || app.AppID != store.AppID || app.Certificate == nil {
		return cred, store, nil, &Error{Class: apitype.ClassAppCertUnreadable, Message: fmt.Sprintf("store %q uses AppID %q, whose certificate has not been delivered%s", store.Name, store.AppID, ofOwner(owner))}
	}
	return cred, store, app, nil
}

func ofOwner(o string) string {
	if o == "" {
		return ""
	}
	return " by owner " + strconv.Quote(o)
}

func ownersPhrase(owners []string) string {
	if len(owners) == 1 && owners[0] == "" {
		return ""
	}
	q := make([]string, 0, len(owners))
	for _, o := range owners {
		if o == "" {
			q = append(q, "no owner")
		} else {
			q = append(q, strconv.Quote(o))
		}
	}
	return " by " + strings.Join(q, ", ")
}

// toError turns a Fetcher error into an *Error.
func toError(ctx context.Context, err error) *Error {
	var ce *ccp.Error
	if errors.As(err, &ce) {
		return &Error{Class: ce.Class, Code: ce.Code, Message: ce.Message, CorrelationID: ce.CorrelationID, Server: ce.Server}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Class: apitype.ClassTimeout, Message: "no answer from CCP within the time allowed"}
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return &Error{Class: apitype.ClassCanceled, Message: "the request was cancelled"}
	}
	return &Error{Class: apitype.ClassServerError, Message: err.Error()}
}

// unreachable reports whether class means CCP could not give an answer, as
// opposed to answering "no".
func unreachable(c apitype.Class) bool {
	switch c {
	case apitype.ClassVaultUnreachable, apitype.ClassTimeout, apitype.ClassServerError:
		return true
	}
	return false
}

type fetcherEntry struct {
	store       string // state.Key(owner, name)
	storeSeq    uint64
	fingerprint string
	f           Fetcher
}

func (r *Resolver) fetcher(store *state.Store, app *state.Application) (Fetcher, error) {
	key := state.Key(store.Owner, store.Name) + "\x00" + app.Owner + "\x00" + app.AppID
	r.fmu.Lock()
	defer r.fmu.Unlock()
	old := r.fetchers[key]
	if old != nil && old.storeSeq == store.Seq && old.fingerprint == app.Fingerprint {
		return old.f, nil
	}
	f, err := r.newFetcher(store, app)
	if err != nil {
		return nil, err
	}
	if old != nil {
		retire(old.f)
	}
	r.fetchers[key] = &fetcherEntry{store: state.Key(store.Owner, store.Name), storeSeq: store.Seq, fingerprint: app.Fingerprint, f: f}
	return f, nil
}

// StoreHealth is what the Resolver has seen of one store's CCP.
type StoreHealth struct {
	LastSuccess    time.Time
	LastError      string
	LastErrorClass apitype.Class
	LastErrorAt    time.Time
	// Servers is what the store's CCP client has seen of each of its
	// servers since it was built (at the store's or the certificate's
	// last delivery, or the agent's start or reload), from fetchers that
	// report it (*ccp.Client does). With a fetcher per application
	// owner, their figures are added up per server.
	Servers []ccp.ServerStats
}

// statsReporter is a Fetcher that says how its servers fare.
type statsReporter interface {
	Stats() ccp.Stats
}

func (r *Resolver) noteHealth(st *state.Store, e *Error, at time.Time) {
	store := state.Key(st.Owner, st.Name)
	r.hmu.Lock()
	defer r.hmu.Unlock()
	h := r.health[store]
	if h == nil {
		h = &StoreHealth{}
		r.health[store] = h
	}
	if e == nil {
		h.LastSuccess = at
		return
	}
	// A missing object is CCP answering, not CCP being unhealthy.
	if e.Class == apitype.ClassNotFound || e.Class == apitype.ClassCanceled {
		h.LastSuccess = at
		return
	}
	h.LastError, h.LastErrorClass, h.LastErrorAt = e.Error(), e.Class, at
}

// Health returns what the Resolver has seen of each store's CCP, by
// state.Key(owner, store name), for status.
func (r *Resolver) Health() map[string]StoreHealth {
	servers := r.serverStats()
	r.hmu.Lock()
	defer r.hmu.Unlock()
	out := make(map[string]StoreHealth, len(r.health)+len(servers))
	for k, v := range r.health {
		out[k] = *v
	}
	for k, ss := range servers {
		h := out[k]
		h.Servers = ss
		out[k] = h
	}
	return out
}

// serverStats collects the fetchers' server figures by store.
func (r *Resolver) serverStats() map[string][]ccp.ServerStats {
	type fetcherOf struct {
		store string
		f     statsReporter
	}
	var fs []fetcherOf
	r.fmu.Lock()
	for _, e := range r.fetchers {
		if sr, ok := e.f.(statsReporter); ok {
			fs = append(fs, fetcherOf{e.store, sr})
		}
	}
	r.fmu.Unlock()
	out := map[string][]ccp.ServerStats{}
	for _, f := range fs {
		out[f.store] = mergeServerStats(out[f.store], f.f.Stats().Servers)
	}
	return out
}

// mergeServerStats adds b's figures to a's, server by server, keeping
// a's order and appending servers a does not have.
func mergeServerStats(a, b []ccp.ServerStats) []ccp.ServerStats {
	for _, s := range b {
		i := slices.IndexFunc(a, func(x ccp.ServerStats) bool { return x.Server == s.Server })
		if i < 0 {
			a = append(a, s)
			continue
		}
		m := &a[i]
		m.Successes += s.Successes
		m.Failures += s.Failures
		if s.LastSuccess.After(m.LastSuccess) {
			m.LastSuccess = s.LastSuccess
		}
		if s.LastError.After(m.LastError) {
			m.LastError, m.LastErrorClass, m.LastErrorCode = s.LastError, s.LastErrorClass, s.LastErrorCode
		}
		m.TLS12Fallback = m.TLS12Fallback || s.TLS12Fallback
	}
	return a
}

// maxReasonBytes bounds the Reason sent to CCP.
const maxReasonBytes = 128

// SanitizeReason makes a run ID safe to send as CCP's Reason: letters,
// digits and " ._:@-" are kept and anything else becomes "_", so that none
// of CCP's reserved query characters (& + % ; = / \ and the like) or control
// characters reach it. The result is at most 128 bytes; empty becomes
// "credagent".
func SanitizeReason(runID string) string {
	if cleanReason(runID) {
		return runID // what sanitizeReason would make of it, without a copy
	}
	return sanitizeReason(runID)
}

func sanitizeReason(runID string) string {
	var b strings.Builder
	for _, c := range runID {
		if b.Len() >= maxReasonBytes {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune(" ._:@-", c):
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		return s
	}
	return "credagent"
}

// cleanReason reports whether SanitizeReason would return s as it is: at
// most maxReasonBytes of the allowed characters, no space at either end.
func cleanReason(s string) bool {
	if s == "" || len(s) > maxReasonBytes || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(" ._:@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// orOp is op, or resolve for a request refused before its operation was
// known.
func orOp(op Op) Op {
	if op == "" {
		return OpResolve
	}
	return op
}
