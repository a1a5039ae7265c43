// Package feed pulls deliveries over the network: it polls the signed
// manifests of a feed (agent/delivery/SPEC.md section 8) for this machine
// and for each group whose key it holds, fetches each delivery that is new
// or newer than the one applied, checks it against the manifest, and hands
// it to the inbox's own check-and-apply path (inbox.Apply). It is a second
// source of deliveries, not a second pipeline: everything a feed delivers
// passes exactly the checks an inbox file does.
//
// The web server is not trusted. A manifest must be signed by a pinned
// portal key, be addressed to what was asked for, be unexpired, and never
// go back in sequence; a delivery must be the bytes its manifest lists. A
// refused manifest or delivery changes nothing: the last good state keeps
// serving, and the reason is shown in status. A delivery that a manifest no
// longer lists is not removed; only a revoke delivery removes an object.
package feed

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/rs/zerolog"
)

// Applier is the inbox's side: *inbox.Inbox.
type Applier interface {
	Apply(source string, b []byte) error
	LastSeq(o delivery.Object) uint64
	Groups() []string
}

// Defaults.
const (
	DefaultInterval = time.Minute
	DefaultTimeout  = 30 * time.Second
	// jitter spreads polls: each wait is uniform in interval × [1-jitter,
	// 1+jitter], so a fleet started together does not poll together.
	jitter = 0.25
)

// Options configure a Feed. URLs, Client, Signers, MachineID, StateDir and
// Inbox are required.
type Options struct {
	// URLs are the feed's base URLs (https), tried in order.
	URLs []string
	// Interval is the mean time between polls. Default one minute.
	Interval time.Duration
	// Client makes the requests (NewHTTPClient).
	Client *http.Client
	// Header is sent with every request (authentication to the feed).
	Header http.Header
	// Timeout bounds one request, body included: a server that drips
	// bytes is cut off. Default 30 s.
	Timeout time.Duration
	// MaxManifestBytes and MaxDeliveryBytes bound what is read. Defaults:
	// delivery.MaxManifestBytes and 1 MiB.
	MaxManifestBytes int64
	MaxDeliveryBytes int64
	// FailClosedAfter, when set, makes FailClosed report a problem once
	// a followed address's newest manifest has been expired this long.
	FailClosedAfter time.Duration
	Signers         []crypto.PublicKey
	MachineID       string
	// StateDir is the agent's state directory; the newest accepted
	// manifest of each address is kept in its "feed" directory.
	StateDir string
	Inbox    Applier
	Log      zerolog.Logger
	Now      func() time.Time
	// Rand returns a number in [0, 1) for the jitter. Default math/rand.
	Rand func() float64
	// Activity, if set, is called each time a manifest is accepted or
	// confirmed unchanged (the agent's metrics: the feed's last activity).
	Activity func(at time.Time)
}

// Feed polls a feed. Its methods may be called from several goroutines.
type Feed struct {
	o     Options
	bases []*url.URL
	dir   string
	sync  chan chan struct{}
	// sched is the Schedule in force (SetSchedule); rescheduled wakes Run
	// to start its wait again under a new one.
	sched       atomic.Pointer[Schedule]
	rescheduled chan struct{}

	mu      sync.Mutex
	sources map[delivery.Address]*source
	polling sync.Mutex // one poll at a time
}

// source is what the agent knows of one address's feed directory.
type source struct {
	addr     delivery.Address
	last     *delivery.Manifest // newest accepted, nil if none
	lastRaw  []byte
	etag     map[string]string // base URL -> ETag of last's bytes
	from     string            // base URL that served last
	accepted time.Time         // when last was accepted or confirmed
	polled   time.Time
	err      string
	errAt    time.Time
	// keepErr says why last could not be kept on disk: until it is, a
	// restart loses its sequence as the floor against a rollback.
	keepErr string
	// refused are deliveries (by SHA-256) refused for a reason of their
	// own; they are not fetched again.
	refused map[string]string
	pending int // listed deliveries not applied yet (retry at next poll)
}

// Schedule is what SetSchedule changes on a running Feed: the mean time
// between polls, and how long an expired manifest is borne before
// resolutions are refused (0: never).
type Schedule struct {
	Interval        time.Duration
	FailClosedAfter time.Duration
}

// SetSchedule applies a new poll interval and fail-closed delay. A wait in
// progress starts again under the new interval; a zero Interval is the
// default.
func (f *Feed) SetSchedule(s Schedule) {
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	f.sched.Store(&s)
	select {
	case f.rescheduled <- struct{}{}:
	default:
	}
}

// Schedule returns the schedule in force.
func (f *Feed) Schedule() Schedule { return *f.schedule() }

func (f *Feed) schedule() *Schedule { return f.sched.Load() }

// New checks the options and loads the manifests kept from earlier runs.
func New(o Options) (*Feed, error) {
	if len(o.URLs) == 0 || o.Client == nil || len(o.Signers) == 0 || o.MachineID == "" || o.StateDir == "" || o.Inbox == nil {
		return nil, errors.New("feed: URLs, Client, Signers, MachineID, StateDir and Inbox are required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxManifestBytes <= 0 || o.MaxManifestBytes > delivery.MaxManifestBytes {
		o.MaxManifestBytes = delivery.MaxManifestBytes
	}
	if o.MaxDeliveryBytes <= 0 {
		o.MaxDeliveryBytes = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	f := &Feed{o: o, dir: filepath.Join(o.StateDir, "feed"), sync: make(chan chan struct{}, 1), sources: map[delivery.Address]*source{},
		rescheduled: make(chan struct{}, 1)}
	f.sched.Store(&Schedule{Interval: o.Interval, FailClosedAfter: o.FailClosedAfter})
	for i, s := range o.URLs {
		u, err := ParseBaseURL(s)
		if err != nil {
			return nil, fmt.Errorf("feed: URL %d: %w", i+1, err)
		}
		f.bases = append(f.bases, u)
	}
	if err := fsutil.MkdirPrivate(f.dir); err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	f.load()
	return f, nil
}

// ParseBaseURL checks a feed base URL: https, a host, an optional path, no
// user, query or fragment.
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "https" {
		return nil, errors.New("must be an https:// URL")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("want https://host[:port][/path], without user, query or fragment")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawPath = ""
	return u, nil
}

// stored is where the newest accepted manifest of a is kept: its feed
// directory with "-" for "/", or, where that name and the temporary name
// fsutil writes it under first would pass a file name's 255 bytes (a long
// group name with characters other than an ID's, which the feed writes in
// hex), the SHA-256 of the address. Names that fit keep the form earlier
// versions kept them under.
func (f *Feed) stored(a delivery.Address) string {
	name := strings.ReplaceAll(delivery.FeedDir(a), "/", "-") + ".manifest"
	if len(name)+tempNameOverhead > maxFileName {
		sum := sha256.Sum256([]byte(string(a.Type) + "\x00" + a.Name))
		name = string(a.Type) + "-sha256-" + hex.EncodeToString(sum[:]) + ".manifest"
	}
	return filepath.Join(f.dir, name)
}

const (
	// maxFileName is NAME_MAX on Linux (and about NTFS's 255 UTF-16
	// units for these ASCII names).
	maxFileName = 255
	// tempNameOverhead is what fsutil.WritePrivateFile's temporary name
	// adds to a file's name: "." and ".tmp-" and 16 hex digits.
	tempNameOverhead = 22
)

// load reads the kept manifests. A kept manifest is checked for its
// signature only: it was accepted before, and its sequence is the floor
// that stops a rollback across restarts.
func (f *Feed) load() {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".manifest") {
			continue
		}
		path := filepath.Join(f.dir, e.Name())
		b, err := fsutil.ReadPrivateFile(path, delivery.MaxManifestBytes)
		if err != nil {
			f.o.Log.Warn().Err(err).Str("file", path).Msg("feed: cannot read a kept manifest")
			continue
		}
		m, err := delivery.ParseManifest(b)
		if err == nil {
			err = m.Verify(f.o.Signers)
		}
		if err != nil || f.stored(m.To) != path {
			f.o.Log.Warn().Err(err).Str("file", path).Msg("feed: ignoring a kept manifest that does not verify")
			continue
		}
		s := f.source(m.To)
		s.last, s.lastRaw = m, b
	}
}

// source returns the state of a, creating it. The caller holds mu, or is
// the only goroutine (New).
func (f *Feed) source(a delivery.Address) *source {
	s := f.sources[a]
	if s == nil {
		s = &source{addr: a, etag: map[string]string{}, refused: map[string]string{}}
		f.sources[a] = s
	}
	return s
}

// Run polls at once, then at jittered intervals and whenever Sync is
// called, until ctx is done. It returns nil when ctx is cancelled.
func (f *Feed) Run(ctx context.Context) error {
	for {
		f.Poll(ctx)
		if !f.wait(ctx) {
			return nil
		}
	}
}

// wait waits out one jittered interval, serving Sync meanwhile, and
// returns false once ctx is done.
func (f *Feed) wait(ctx context.Context) bool {
	for {
		wait := time.Duration(float64(f.schedule().Interval) * (1 - jitter + 2*jitter*f.o.Rand()))
		t := time.NewTimer(wait)
		var done chan struct{}
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
			return true
		case <-f.rescheduled:
			t.Stop()
			continue // the same wait, under the new interval
		case done = <-f.sync:
			t.Stop()
			f.Poll(ctx)
			close(done)
			return true
		}
	}
}

// Sync asks Run to poll now and waits until that poll is done or ctx ends
// (credagent sync, SIGHUP).
func (f *Feed) Sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case f.sync <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Poll polls the machine's manifest, then each group's: the machine's may
// bring the group keys that make a group followed.
func (f *Feed) Poll(ctx context.Context) {
	f.polling.Lock()
	defer f.polling.Unlock()
	f.pollAddress(ctx, delivery.Machine(f.o.MachineID))
	for _, g := range f.o.Inbox.Groups() {
		if ctx.Err() != nil {
			return
		}
		f.pollAddress(ctx, delivery.Group(g))
	}
}

// errNotModified is a 304.
var errNotModified = errors.New("not modified")

func (f *Feed) pollAddress(ctx context.Context, a delivery.Address) {
	f.mu.Lock()
	s := f.source(a)
	last, lastRaw := s.last, s.lastRaw
	f.mu.Unlock()
	now := f.o.Now()
	checker := &delivery.ManifestChecker{MaxBytes: f.o.MaxManifestBytes, Signers: f.o.Signers, Now: now}
	var errs []string
	var m *delivery.Manifest
	var raw []byte
	var base *url.URL
	for _, b := range f.bases {
		f.mu.Lock()
		etag := ""
		if last != nil && s.from == b.String() {
			etag = s.etag[b.String()]
		}
		f.mu.Unlock()
		body, newTag, err := f.get(ctx, b, delivery.FeedDir(a)+"/"+delivery.ManifestName, f.o.MaxManifestBytes, etag)
		notModified := errors.Is(err, errNotModified)
		if notModified {
			// The same bytes: checked again, for the expiry.
			body, newTag, err = lastRaw, etag, nil
		}
		if err == nil {
			var cm *delivery.Manifest
			if cm, err = checker.Check(body, a, last, lastRaw); err == nil {
				m, raw, base = cm, body, b
				if !notModified {
					f.mu.Lock()
					s.etag = map[string]string{b.String(): newTag}
					f.mu.Unlock()
				}
				break
			}
		}
		errs = append(errs, fmt.Sprintf("%s: %s", redact(b), describe(err)))
	}
	f.mu.Lock()
	s.polled = now
	if m == nil {
		s.err, s.errAt = strings.Join(errs, "; "), now
		f.mu.Unlock()
		f.o.Log.Error().Str("feed", a.String()).Str("error", strings.Join(errs, "; ")).Msg("feed: no manifest accepted; the last good state stays in force")
		return
	}
	changed := last == nil || m.Seq != last.Seq
	if changed {
		s.keepErr = ""
		if err := fsutil.WritePrivateFile(f.stored(a), raw); err != nil {
			s.keepErr = err.Error()
			f.o.Log.Error().Err(err).Str("feed", a.String()).Msg("feed: cannot keep the manifest")
		}
		s.last, s.lastRaw = m, raw
		s.refused = map[string]string{}
		f.o.Log.Info().Str("feed", a.String()).Uint64("seq", m.Seq).Time("expires", m.Expires).
			Int("deliveries", len(m.Deliveries)).Msg("feed: manifest accepted")
	}
	s.from, s.accepted, s.err, s.errAt = base.String(), now, "", time.Time{}
	refused := s.refused
	f.mu.Unlock()
	if f.o.Activity != nil {
		f.o.Activity(now)
	}
	pending, errMsg := f.fetchDeliveries(ctx, a, m, base, refused)
	f.mu.Lock()
	s.pending = pending
	if errMsg != "" {
		s.err, s.errAt = errMsg, now
	}
	f.mu.Unlock()
}

// fetchDeliveries fetches and applies each listed delivery newer than the
// applied one, group keys first. It returns how many wait for a retry and
// the error to show.
func (f *Feed) fetchDeliveries(ctx context.Context, a delivery.Address, m *delivery.Manifest, first *url.URL, refused map[string]string) (int, string) {
	es := slices.Clone(m.Deliveries)
	rank := func(k delivery.Kind) int { return slices.Index(delivery.Kinds, k) }
	slices.SortStableFunc(es, func(x, y delivery.ManifestEntry) int { return rank(x.Kind) - rank(y.Kind) })
	bases := append([]*url.URL{first}, slices.DeleteFunc(slices.Clone(f.bases), func(u *url.URL) bool { return u == first })...)
	pending := 0
	var errs []string
	for _, e := range es {
		if ctx.Err() != nil {
			return pending, ""
		}
		if e.Seq <= f.o.Inbox.LastSeq(e.Object()) {
			continue
		}
		f.mu.Lock()
		why, isRefused := refused[e.SHA256]
		f.mu.Unlock()
		if isRefused {
			errs = append(errs, fmt.Sprintf("delivery %s refused: %s", e.ID, why))
			continue
		}
		var lastErr error
		done := false
		for _, b := range bases {
			raw, _, err := f.get(ctx, b, delivery.FeedFile(a, e.ID), min(e.Size, f.o.MaxDeliveryBytes), "")
			if err == nil {
				err = f.checkEntry(&e, raw)
			}
			if err != nil {
				lastErr = err
				continue // another server may serve the right bytes
			}
			// The name is a safe file name on every OS (IDs are
			// [A-Za-z0-9_-]): a refused delivery is kept under it.
			err = f.o.Inbox.Apply("feed-"+e.ID+".delivery", raw)
			switch {
			case err == nil:
			case errors.Is(err, inbox.ErrRetry):
				pending++
			default:
				f.mu.Lock()
				refused[e.SHA256] = delivery.Reason(err)
				f.mu.Unlock()
				errs = append(errs, fmt.Sprintf("delivery %s refused: %s", e.ID, delivery.Reason(err)))
			}
			done = true
			break
		}
		if !done {
			pending++
			if errors.Is(lastErr, delivery.ErrNotSealed) {
				f.mu.Lock()
				refused[e.SHA256] = delivery.Reason(lastErr)
				f.mu.Unlock()
			}
			errs = append(errs, fmt.Sprintf("delivery %s: %s", e.ID, describe(lastErr)))
			f.o.Log.Error().Str("feed", a.String()).Str("delivery", e.ID).Str("error", describe(lastErr)).Msg("feed: delivery not fetched")
		}
	}
	return pending, strings.Join(errs, "; ")
}

// checkEntry checks fetched bytes against their manifest entry.
func (f *Feed) checkEntry(e *delivery.ManifestEntry, raw []byte) error {
	if !e.Matches(raw) {
		return fmt.Errorf("%w: %s: %d bytes, not the size and SHA-256 listed", delivery.ErrHashMismatch, e.ID, len(raw))
	}
	d, err := delivery.Parse(raw)
	if err != nil {
		return err
	}
	if !e.Describes(d) {
		return fmt.Errorf("%w: %s: the header is not the one listed", delivery.ErrHashMismatch, e.ID)
	}
	if !d.Sealed() && d.Kind != delivery.KindRevoke {
		return fmt.Errorf("%w: %s %s", delivery.ErrNotSealed, d.Kind, d.ID)
	}
	return nil
}

// Fetch errors of the network, each with its reason code.
var (
	ErrHTTPStatus = errors.New("feed: unexpected HTTP status")
	ErrTransport  = errors.New("feed: request failed")
)

// describe is an error's reason code and text for status.
func describe(err error) string {
	if err == nil {
		return "unknown error"
	}
	switch {
	case errors.Is(err, ErrHTTPStatus):
		return "http-status: " + err.Error()
	case errors.Is(err, ErrTransport):
		return "network: " + err.Error()
	}
	return delivery.Reason(err) + ": " + err.Error()
}

// redact is a base URL for logs and status: scheme, host and path.
func redact(u *url.URL) string { return u.Scheme + "://" + u.Host + u.Path }

// get fetches base+rel, reading at most limit bytes (more is ErrTooLarge),
// within the request timeout. With etag set, a 304 is errNotModified.
func (f *Feed) get(ctx context.Context, base *url.URL, rel string, limit int64, etag string) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	u := base.JoinPath(rel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrTransport, err)
	}
	for k, vs := range f.o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := f.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, by the caller
		}
		return nil, "", fmt.Errorf("%w: %s: %v", ErrTransport, rel, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return nil, etag, errNotModified
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", fmt.Errorf("%w: %s: %s", ErrHTTPStatus, rel, resp.Status)
	case resp.ContentLength > limit:
		return nil, "", fmt.Errorf("%w: %s: %d bytes announced, limit %d", delivery.ErrTooLarge, rel, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: reading the body: %v", ErrTransport, rel, err)
	}
	if n > limit {
		return nil, "", fmt.Errorf("%w: %s: more than %d bytes", delivery.ErrTooLarge, rel, limit)
	}
	return buf.Bytes(), resp.Header.Get("ETag"), nil
}
