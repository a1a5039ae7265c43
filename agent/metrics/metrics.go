// Package metrics keeps the agent's Prometheus metrics and writes them in
// the text exposition format: atomically to a file for node_exporter's and
// windows_exporter's textfile collectors, and optionally on /metrics at a
// loopback address. No other part formats Prometheus text: the parts record
// into a Registry.
//
// Labels hold only bounded values that are not secret: operation, outcome
// and error class of a resolution; CCP server URL (from the delivered
// stores) and HTTP status; delivery kind, result and reason code; AppID and
// owner of the delivered applications; key store backend; a feed
// manifest's address kind (machine, group) and the name of a configured
// group. Never a run ID,
// a flow ID, a caller, a credential name or anything a caller chooses.
//
// Recording is a few atomic additions under a short lock, so it costs the
// resolution path nothing measurable; rendering happens only when the file
// is written (every metrics.interval, at most 15 s) or the page is read.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/state"
)

// Buckets of the latency histograms, in seconds: a resolution served from
// the local network takes about a millisecond; CCP behind a slow Vault
// takes seconds; the per-request timeout is 30 s by default.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Registry holds the metrics. The zero value is not usable; use New. A nil
// *Registry records nothing, so parts may hold one unconditionally.
type Registry struct {
	version string
	now     func() time.Time

	mu          sync.Mutex
	resolutions map[[3]string]*atomic.Uint64 // op, outcome, class
	ccpRequests map[[2]string]*atomic.Uint64 // server, status
	// ccpCounters finds ccpRequests' counter for a server URL and status as
	// CCPRequest is given them (ccpKey), without a lock, a URL parse or a
	// status string per request. Servers come from delivered stores.
	ccpCounters sync.Map
	// resolutionCounters is the same for resolutions: label set ->
	// resolutions' counter.
	resolutionCounters sync.Map
	deliveries         map[[3]string]*atomic.Uint64 // kind, result, reason
	activity           map[string]time.Time         // source -> last delivery handled

	resolveLatency *histogram
	ccpLatency     *histogram

	keyBackend  atomic.Pointer[string]
	keyHardware atomic.Bool
	snapshot    atomic.Pointer[func() *state.Snapshot]
	feed        atomic.Pointer[feedSource]
}

// FeedManifest is what the feed knows of one followed address: its newest
// accepted manifest (Seq 0: none accepted yet).
type FeedManifest struct {
	Machine bool   // the machine's own address; else a group's
	Group   string // the group's name
	Seq     uint64
	Created time.Time
	Expires time.Time
	Expired bool
}

type feedSource struct {
	load   func() []FeedManifest
	groups map[string]bool
}

// New returns an empty Registry for this build's version.
func New(version string) *Registry {
	return &Registry{
		version:        version,
		now:            time.Now,
		resolutions:    map[[3]string]*atomic.Uint64{},
		ccpRequests:    map[[2]string]*atomic.Uint64{},
		deliveries:     map[[3]string]*atomic.Uint64{},
		activity:       map[string]time.Time{},
		resolveLatency: newHistogram(latencyBuckets),
		ccpLatency:     newHistogram(latencyBuckets),
	}
}

// Resolution records one name's resolution: op (resolve, check), outcome
// (ok, error, refused), the error class ("" on success) and its latency.
func (r *Registry) Resolution(op, outcome, class string, latency time.Duration) {
	if r == nil {
		return
	}
	if class == "" {
		class = "none"
	}
	k := [3]string{bounded(op), bounded(outcome), bounded(class)}
	cached(&r.resolutionCounters, k, func() *atomic.Uint64 { return counter(&r.mu, r.resolutions, k) }).Add(1)
	r.resolveLatency.observe(latency.Seconds())
}

// CCPRequest records one HTTP attempt to a CCP server: its base URL, the
// HTTP status (0 when no answer came: connection, TLS or timeout) and how
// long it took.
func (r *Registry) CCPRequest(server string, status int, took time.Duration) {
	if r == nil {
		return
	}
	cached(&r.ccpCounters, ccpKey{server, status}, func() *atomic.Uint64 {
		st := "none"
		if status >= 100 && status <= 599 {
			st = strconv.Itoa(status)
		}
		return counter(&r.mu, r.ccpRequests, [2]string{serverLabel(server), st})
	}).Add(1)
	r.ccpLatency.observe(took.Seconds())
}

// cached returns the counter stored under k in cache, making it with mk (and
// storing it) the first time. Racing first calls get the same counter: mk
// returns the one of the labelled map.
func cached[K comparable](cache *sync.Map, k K, mk func() *atomic.Uint64) *atomic.Uint64 {
	if c, ok := cache.Load(k); ok {
		return c.(*atomic.Uint64)
	}
	c := mk()
	cache.Store(k, c)
	return c
}

// ccpKey is a CCPRequest's server and status as given.
type ccpKey struct {
	server string
	status int
}

// Delivery records a delivery the inbox (source "inbox") or the feed
// (source "feed") handled: applied, or rejected with its reason code. It is
// also the source's last activity.
func (r *Registry) Delivery(source, kind string, applied bool, reason string, at time.Time) {
	if r == nil {
		return
	}
	result := "applied"
	if !applied {
		result = "rejected"
	}
	if kind == "" {
		kind = "unknown"
	}
	if reason == "" {
		reason = "none"
	}
	counter(&r.mu, r.deliveries, [3]string{bounded(kind), result, bounded(reason)}).Add(1)
	r.Activity(source, at)
}

// Activity records that source (inbox, feed) did something at t.
func (r *Registry) Activity(source string, t time.Time) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if t.After(r.activity[bounded(source)]) {
		r.activity[bounded(source)] = t
	}
	r.mu.Unlock()
}

// SetKeyStore records the key store's backend and whether the key is in
// hardware.
func (r *Registry) SetKeyStore(backend string, hardware bool) {
	if r == nil {
		return
	}
	b := bounded(backend)
	r.keyBackend.Store(&b)
	r.keyHardware.Store(hardware)
}

// SetState gives the Registry the current state, read at each write for
// the certificate expiry of every application.
func (r *Registry) SetState(load func() *state.Snapshot) {
	if r == nil {
		return
	}
	r.snapshot.Store(&load)
}

// SetFeed gives the Registry the feed's manifests, read at each write.
// groups are the configured groups: a group's manifest has series of its
// own, labelled with its name, only when the group is configured, so that
// no name from outside the configuration grows the label set; every
// address counts in credagent_feed_addresses.
func (r *Registry) SetFeed(load func() []FeedManifest, groups []string) {
	if r == nil {
		return
	}
	fs := &feedSource{load: load, groups: map[string]bool{}}
	for _, g := range groups {
		fs.groups[g] = true
	}
	r.feed.Store(fs)
}

// counter returns m's counter for the label set k, under mu, adding it the
// first time.
func counter[K comparable](mu *sync.Mutex, m map[K]*atomic.Uint64, k K) *atomic.Uint64 {
	mu.Lock()
	defer mu.Unlock()
	c := m[k]
	if c == nil {
		c = new(atomic.Uint64)
		m[k] = c
	}
	return c
}

// bounded keeps a label value that is a short identifier ([a-z0-9_-], at
// most 40 bytes) and replaces anything else with "other", so that no value
// from outside the agent's own vocabulary can grow the label set.
func bounded(v string) string {
	if v == "" || len(v) > 40 {
		return "other"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "other"
		}
	}
	return v
}

// serverLabel keeps scheme, host and port of a CCP server URL (the
// delivered stores' servers, at most 16 each); never a path or query.
func serverLabel(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || len(u.Host) > 260 {
		return "other"
	}
	return "https://" + u.Host
}

type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64   // float64 bits
	n      atomic.Uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i].Add(1)
	h.n.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// WriteText writes every metric in the Prometheus text exposition format
// (version 0.0.4).
func (r *Registry) WriteText(w io.Writer) error {
	var b bytes.Buffer
	r.render(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (r *Registry) render(b *bytes.Buffer) {
	head := func(name, typ, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	head("credagent_build_info", "gauge", "The agent's version and Go version; always 1.")
	fmt.Fprintf(b, "credagent_build_info{version=%s,goversion=%s} 1\n", quote(r.version), quote(runtime.Version()))

	if p := r.keyBackend.Load(); p != nil {
		head("credagent_keystore_info", "gauge", "The machine key's store: backend and whether it is hardware-backed; always 1.")
		fmt.Fprintf(b, "credagent_keystore_info{backend=%s,hardware=%s} 1\n", quote(*p), quote(strconv.FormatBool(r.keyHardware.Load())))
		head("credagent_keystore_hardware", "gauge", "1 when the machine key is held in hardware (a TPM), else 0.")
		fmt.Fprintf(b, "credagent_keystore_hardware %d\n", b2i(r.keyHardware.Load()))
	}

	r.mu.Lock()
	res := sortedCounters3(r.resolutions)
	ccpReq := sortedCounters2(r.ccpRequests)
	dels := sortedCounters3(r.deliveries)
	act := make([]string, 0, len(r.activity))
	for s := range r.activity {
		act = append(act, s)
	}
	sort.Strings(act)
	actAt := make([]time.Time, len(act))
	for i, s := range act {
		actAt[i] = r.activity[s]
	}
	r.mu.Unlock()

	head("credagent_resolutions_total", "counter", "Resolutions of one credential name, by operation, outcome (ok, error, refused) and error class.")
	for _, c := range res {
		fmt.Fprintf(b, "credagent_resolutions_total{op=%s,outcome=%s,class=%s} %d\n", quote(c.k[0]), quote(c.k[1]), quote(c.k[2]), c.v)
	}
	head("credagent_resolve_duration_seconds", "histogram", "Time to resolve one credential name, refusals included.")
	r.resolveLatency.write(b, "credagent_resolve_duration_seconds")

	head("credagent_ccp_requests_total", "counter", "HTTP attempts to CCP servers, by server and HTTP status (none: no answer).")
	for _, c := range ccpReq {
		fmt.Fprintf(b, "credagent_ccp_requests_total{server=%s,status=%s} %d\n", quote(c.k[0]), quote(c.k[1]), c.v)
	}
	head("credagent_ccp_request_duration_seconds", "histogram", "Time of one HTTP attempt to a CCP server.")
	r.ccpLatency.write(b, "credagent_ccp_request_duration_seconds")

	head("credagent_deliveries_total", "counter", "Deliveries handled, by kind, result (applied, rejected) and reason code.")
	for _, c := range dels {
		fmt.Fprintf(b, "credagent_deliveries_total{kind=%s,result=%s,reason=%s} %d\n", quote(c.k[0]), quote(c.k[1]), quote(c.k[2]), c.v)
	}
	if len(act) > 0 {
		head("credagent_last_activity_timestamp_seconds", "gauge", "When the inbox or the feed last handled a delivery, in Unix seconds.")
		for i, s := range act {
			fmt.Fprintf(b, "credagent_last_activity_timestamp_seconds{source=%s} %s\n", quote(s), seconds(actAt[i]))
		}
	}

	if fs := r.feed.Load(); fs != nil {
		r.renderFeed(b, head, fs)
	}

	if p := r.snapshot.Load(); p != nil {
		snap := (*p)()
		type app struct {
			owner, id string
			notAfter  time.Time
		}
		apps := make([]app, 0, len(snap.Applications))
		for _, a := range snap.Applications {
			apps = append(apps, app{a.Owner, a.AppID, a.NotAfter})
		}
		sort.Slice(apps, func(i, j int) bool {
			return state.Key(apps[i].owner, apps[i].id) < state.Key(apps[j].owner, apps[j].id)
		})
		head("credagent_certificate_expiry_timestamp_seconds", "gauge", "When each delivered application certificate expires, in Unix seconds, by AppID and owner.")
		for _, a := range apps {
			fmt.Fprintf(b, "credagent_certificate_expiry_timestamp_seconds{app_id=%s,owner=%s} %s\n", quote(a.id), quote(a.owner), seconds(a.notAfter))
		}
	}
}

// renderFeed writes the feed's gauges: per address (the machine, each
// configured group) the newest accepted manifest's sequence, age and
// expiry, and how many followed addresses are fresh, expired or without a
// manifest.
func (r *Registry) renderFeed(b *bytes.Buffer, head func(name, typ, help string), fs *feedSource) {
	ms := fs.load()
	now := r.now()
	counts := map[string]int{"fresh": 0, "expired": 0, "none": 0}
	type series struct {
		labels string
		m      FeedManifest
	}
	var ss []series
	for _, m := range ms {
		switch {
		case m.Seq == 0:
			counts["none"]++
		case m.Expired:
			counts["expired"]++
		default:
			counts["fresh"]++
		}
		if m.Seq == 0 {
			continue
		}
		switch {
		case m.Machine:
			ss = append(ss, series{`address="machine",group=""`, m})
		case fs.groups[m.Group]:
			ss = append(ss, series{`address="group",group=` + quote(m.Group), m})
		}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].labels < ss[j].labels })
	head("credagent_feed_addresses", "gauge", "Feed addresses followed (the machine, each group whose key it holds), by the state of the newest accepted manifest: fresh, expired, none.")
	for _, st := range []string{"expired", "fresh", "none"} {
		fmt.Fprintf(b, "credagent_feed_addresses{state=%s} %d\n", quote(st), counts[st])
	}
	if len(ss) == 0 {
		return
	}
	head("credagent_feed_manifest_sequence", "gauge", "Sequence number of the newest accepted feed manifest, by address kind and configured group.")
	for _, s := range ss {
		fmt.Fprintf(b, "credagent_feed_manifest_sequence{%s} %d\n", s.labels, s.m.Seq)
	}
	head("credagent_feed_manifest_age_seconds", "gauge", "Age of the newest accepted feed manifest (now - created), by address kind and configured group.")
	for _, s := range ss {
		fmt.Fprintf(b, "credagent_feed_manifest_age_seconds{%s} %s\n", s.labels, strconv.FormatFloat(now.Sub(s.m.Created).Seconds(), 'f', -1, 64))
	}
	head("credagent_feed_manifest_expiry_timestamp_seconds", "gauge", "When the newest accepted feed manifest expires, in Unix seconds, by address kind and configured group.")
	for _, s := range ss {
		fmt.Fprintf(b, "credagent_feed_manifest_expiry_timestamp_seconds{%s} %s\n", s.labels, seconds(s.m.Expires))
	}
}

func (h *histogram) write(b *bytes.Buffer, name string) {
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(b, "%s_bucket{le=%q} %d\n", name, strconv.FormatFloat(bound, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n", name, cum)
	fmt.Fprintf(b, "%s_sum %s\n", name, strconv.FormatFloat(math.Float64frombits(h.sum.Load()), 'g', -1, 64))
	// The count is the +Inf bucket, so that the two always agree even while
	// observations race the write.
	fmt.Fprintf(b, "%s_count %d\n", name, cum)
}

type counter3 struct {
	k [3]string
	v uint64
}

type counter2 struct {
	k [2]string
	v uint64
}

func sortedCounters3(m map[[3]string]*atomic.Uint64) []counter3 {
	out := make([]counter3, 0, len(m))
	for k, v := range m {
		out = append(out, counter3{k, v.Load()})
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i].k[:], "\x00") < strings.Join(out[j].k[:], "\x00")
	})
	return out
}

func sortedCounters2(m map[[2]string]*atomic.Uint64) []counter2 {
	out := make([]counter2, 0, len(m))
	for k, v := range m {
		out = append(out, counter2{k, v.Load()})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].k[0]+"\x00"+out[i].k[1] < out[j].k[0]+"\x00"+out[j].k[1]
	})
	return out
}

// quote writes a label value as the text format wants it: in double
// quotes, with backslash, double quote and line feed escaped.
func quote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func seconds(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}
