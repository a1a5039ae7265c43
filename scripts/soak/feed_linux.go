package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// The soak's feed: an in-process HTTPS file server (rig.FeedFiles, the CA
// of the fake CCP's dev PKI pinned by the agent) over a tree that the
// harness writes as credseal publish does (portal.Feed), addressed to the
// agent's machine. The agent polls it through the whole run; the harness
// publishes changes to it and makes it misbehave in every way issue 15
// lists, one fault at a time, and checks the agent through its status.

// Feed timings of the simulated month (divided by the speed).
const (
	feedPoll      = 12 * time.Second // the agent's feed.poll_interval
	feedTimeout   = 2 * time.Second  // feed.timeout, not scaled: the slow drip waits it out
	feedMaxBytes  = 64 << 10         // feed.max_manifest_bytes
	feedCredNames = 3                // feed credentials cycle through feed-0..2
)

// feedFault is one way the feed's server misbehaves, and the reason the
// agent must give in status (a substring of the feed's last error).
type feedFault struct {
	name, reason string
}

// htmlErrorPage is what a misconfigured server or a captive portal
// answers with 200 in place of the manifest.
const htmlErrorPage = "<html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>\n"

// feedFaults are the bad answers of issue 15, section 5, served in turn.
var feedFaults = []feedFault{
	{"outage: 503 for every request", "http-status"},
	{"connections reset", "network"},
	{"HTML error page served with 200", "malformed"},
	{"truncated manifest", "malformed"},
	{"manifest signed by an unknown key", "unknown-signer"},
	{"manifest with a bad signature", "bad-signature"},
	{"manifest rolled back to an older one", "rollback"},
	{"expired manifest", "expired"},
	{"oversized manifest", "too-large"},
	{"slow drip", "reading the body"},
	{"redirect to http", "not https"},
	{"delivery that does not match its manifest", "hash-mismatch"},
}

// soakFeed is the feed's server and writer.
type soakFeed struct {
	s        *soak
	root     string
	url      string
	port     string
	caFile   string
	srv      *http.Server
	files    *rig.FeedFiles
	pub      *portal.Feed // nil until the agent has registered
	addr     delivery.Address
	manifest string // URL path of the machine's manifest
	// busy serialises the feed's events, so that a fault never overlaps
	// the check of a change.
	busy sync.Mutex
	turn int

	mu        sync.Mutex
	fault     string // the fault served now, "" for none
	body      []byte // what a fault serves in place of the manifest
	corruptID string // the delivery served with a flipped byte
	prev      []byte // the manifest before the current one (the rollback)
	fig       feedFigures
}

// startFeed starts the feed's server on a free loopback port. The tree is
// empty (404) until the agent has registered and publishFeed first runs.
func (s *soak) startFeed() error {
	f := &soakFeed{s: s, root: filepath.Join(s.root, "feed"), caFile: s.pki.CAFile}
	f.fig.PollS = s.feedPoll().Seconds()
	f.fig.Reasons = map[string]string{}
	if err := os.MkdirAll(f.root, 0o755); err != nil {
		return err
	}
	f.files = &rig.FeedFiles{Root: f.root, Log: func(_ *http.Request, status, _ int) {
		f.mu.Lock()
		f.fig.Requests++
		if status == http.StatusNotModified {
			f.fig.NotModified++
		}
		f.mu.Unlock()
	}}
	cert, err := tls.LoadX509KeyPair(s.pki.ServerCertFile, s.pki.ServerKeyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	f.url = "https://" + ln.Addr().String() + "/"
	_, f.port, _ = net.SplitHostPort(ln.Addr().String())
	// HTTP/1.1 only, so that a reset can hijack the connection.
	f.srv = &http.Server{Handler: f, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second}
	go f.srv.ServeTLS(ln, "", "")
	s.feed = f
	fmt.Printf("feed on %s, polled every %v\n", f.url, s.feedPoll())
	return nil
}

// feedPoll is the agent's poll interval: 12 s of the simulated month, at
// least 1 s (the config's floor).
func (s *soak) feedPoll() time.Duration {
	return max(s.scaled(feedPoll), time.Second).Round(100 * time.Millisecond)
}

// stop closes the server.
func (f *soakFeed) stop() {
	if f != nil && f.srv != nil {
		f.srv.Close()
	}
}

// ServeHTTP serves the tree, or the fault of the moment.
func (f *soakFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fault, body, corrupt := f.fault, f.body, f.corruptID
	f.mu.Unlock()
	isManifest := r.URL.Path == f.manifest
	switch {
	case fault == "":
	case fault == feedFaults[0].name:
		f.count()
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	case fault == feedFaults[1].name:
		f.count()
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			if tc, ok := c.(*tls.Conn); ok {
				if nc, ok := tc.NetConn().(*net.TCPConn); ok {
					nc.SetLinger(0) // a reset, not a clean close
				}
			}
			c.Close()
		}
		return
	case fault == "delivery that does not match its manifest":
		if corrupt != "" && strings.HasSuffix(r.URL.Path, "/"+corrupt+".delivery") {
			f.count()
			b, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			b[len(b)/2] ^= 0x20
			w.Write(b)
			return
		}
	case !isManifest:
	case fault == "HTML error page served with 200":
		f.count()
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(htmlErrorPage))
		return
	case fault == "slow drip":
		f.count()
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		fl := w.(http.Flusher)
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		return
	case fault == "redirect to http":
		f.count()
		http.Redirect(w, r, "http://"+r.Host+r.URL.Path, http.StatusFound)
		return
	default: // a manifest of the fault's own
		f.count()
		w.Write(body)
		return
	}
	f.files.ServeHTTP(w, r)
}

func (f *soakFeed) count() {
	f.mu.Lock()
	f.fig.Requests++
	f.mu.Unlock()
}

// ready is called once the agent has registered: the machine's address,
// its first (empty) manifest, and the agent's acceptance of it.
func (f *soakFeed) ready(ctx context.Context) error {
	s := f.s
	f.addr = delivery.Machine(s.portal.MachineID())
	f.manifest = "/" + delivery.FeedDir(f.addr) + "/" + delivery.ManifestName
	f.pub = &portal.Feed{Root: f.root, Signer: s.portal.Signer(), Validity: 24 * time.Hour, Grace: time.Minute}
	p, err := f.pub.Refresh(f.addr)
	if err != nil {
		return err
	}
	f.noteManifest()
	// The agent polls at start and gets 404s until now; a reload polls
	// now.
	s.cfgMu.Lock()
	err = s.agent.Signal(syscall.SIGHUP)
	s.cfgMu.Unlock()
	if err != nil {
		return err
	}
	_, err = f.await(ctx, 30*time.Second, func(st *apitype.FeedStatus, _ *apitype.Status) bool { return st.Seq >= p.Seq && st.LastError == "" })
	return err
}

// noteManifest remembers the manifest now in the tree as a record the
// state directory keeps (the agent keeps the newest accepted one).
func (f *soakFeed) noteManifest() {
	b, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(f.manifest)))
	if err != nil {
		return
	}
	f.s.mu.Lock()
	f.s.recordBytes["feed manifest"] = max(f.s.recordBytes["feed manifest"], int64(len(b)))
	f.s.mu.Unlock()
}

// publish adds deliveries to the tree, keeping the manifest it replaces
// for the rollback fault, and returns the new manifest's sequence.
func (f *soakFeed) publish(ds ...*delivery.Delivery) (uint64, error) {
	prev, _ := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(f.manifest)))
	raws := make([][]byte, len(ds))
	for i, d := range ds {
		raws[i] = d.Marshal()
		key := string(d.Object().Kind) + "/" + d.Target
		f.s.mu.Lock()
		f.s.recordBytes[key] = int64(len(raws[i]))
		f.s.mu.Unlock()
	}
	ps, err := f.pub.Publish(raws)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	if len(prev) > 0 {
		f.prev = prev
	}
	f.mu.Unlock()
	f.noteManifest()
	return ps[0].Seq, nil
}

// await polls the agent's status until ok holds for the machine's feed
// address, or within passes. It returns how long that took.
func (f *soakFeed) await(ctx context.Context, within time.Duration, ok func(*apitype.FeedStatus, *apitype.Status) bool) (time.Duration, error) {
	start := time.Now()
	var last string
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := f.s.api.Status(sctx)
		cancel()
		if err == nil {
			i := slices.IndexFunc(st.Feed, func(fs apitype.FeedStatus) bool { return fs.Address == f.addr.String() })
			if i >= 0 {
				if ok(&st.Feed[i], st) {
					return time.Since(start), nil
				}
				last = fmt.Sprintf("feed status seq %d, pending %d, last error %q", st.Feed[i].Seq, st.Feed[i].Pending, st.Feed[i].LastError)
			} else {
				last = "no feed address " + f.addr.String() + " in status"
			}
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Since(start) > within {
			return 0, fmt.Errorf("not within %v: %s", within.Round(time.Millisecond), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// within is how long a change or a fault may take to show: two polls at
// their longest, the request timeout, and room for a loaded machine.
func (f *soakFeed) within() time.Duration {
	return time.Duration(2.5*float64(f.s.feedPoll())) + feedTimeout + 5*time.Second
}

func (f *soakFeed) fail(msg string) error {
	f.mu.Lock()
	f.fig.Failures = append(f.fig.Failures, fmt.Sprintf("t=%.0fs %s", f.s.since(), msg))
	f.mu.Unlock()
	return errors.New(msg)
}

// feedCredentials publishes a new credential, and from the third time on
// the revocation of an older one, cycling through feedCredNames names, and
// checks that the agent picks both up and serves the new one.
func (s *soak) feedCredentials(ctx context.Context) error {
	f := s.feed
	f.busy.Lock()
	defer f.busy.Unlock()
	f.turn++
	k := f.turn - 1
	name, gone := fmt.Sprintf("feed-%d", k%feedCredNames), fmt.Sprintf("feed-%d", (k+1)%feedCredNames)
	obj := sapObject
	if k%2 == 1 {
		obj = rpaObject
	}
	d, err := s.portal.MakeForFeed(name, &delivery.Credential{Store: storeName, Object: obj})
	if err != nil {
		return err
	}
	ds := []*delivery.Delivery{d}
	what := "credential " + name
	if k >= feedCredNames-1 { // from the third turn on, one is live to revoke
		r, err := s.portal.MakeForFeed(gone, &delivery.Revoke{Revokes: delivery.KindCredential})
		if err != nil {
			return err
		}
		ds = append(ds, r)
		what += " and the revocation of " + gone
	}
	err = f.change(ctx, what, ds, func(st *apitype.Status) bool {
		return hasCredential(st, name) && (len(ds) == 1 || !hasCredential(st, gone))
	})
	if err != nil || ctx.Err() != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	res, err := s.api.Resolve(rctx, "soak-feed", "soak", name)
	cancel()
	if err == nil {
		err = res.Err()
		res.Wipe()
	}
	if err != nil && ctx.Err() == nil {
		return f.fail(fmt.Sprintf("credential %s from the feed does not resolve: %v", name, err))
	}
	return nil
}

// feedRotateCert publishes a new application certificate to the feed and
// checks that the agent picks it up.
func (s *soak) feedRotateCert(ctx context.Context) error {
	f := s.feed
	f.busy.Lock()
	defer f.busy.Unlock()
	app, serial, err := s.newAppCert()
	if err != nil {
		return err
	}
	d, err := s.portal.MakeForFeed(appID, app)
	if err != nil {
		return err
	}
	return f.change(ctx, "application certificate "+serial, []*delivery.Delivery{d}, func(st *apitype.Status) bool {
		return slices.ContainsFunc(st.Applications, func(a apitype.ApplicationStatus) bool { return a.AppID == appID && a.Serial == serial })
	})
}

// change publishes ds and waits until the agent's status satisfies ok,
// counting the change and its propagation time. The caller holds busy.
func (f *soakFeed) change(ctx context.Context, what string, ds []*delivery.Delivery, ok func(*apitype.Status) bool) error {
	if _, err := f.publish(ds...); err != nil {
		return err
	}
	took, err := f.await(ctx, f.within(), func(_ *apitype.FeedStatus, st *apitype.Status) bool { return ok(st) })
	if ctx.Err() != nil {
		return nil // the run ended first: not counted either way
	}
	f.mu.Lock()
	f.fig.Published++
	if err == nil {
		f.fig.PickedUp++
		f.fig.props = append(f.fig.props, took.Seconds())
	}
	f.mu.Unlock()
	if err != nil {
		return f.fail(fmt.Sprintf("%s published to the feed: the agent did not pick it up: %v", what, err))
	}
	return nil
}

// feedFault makes the feed misbehave in the next way of feedFaults until
// the agent reports it with its reason, checks that the last good state
// stays (the manifest's sequence, resolutions), then heals the feed and
// waits until the agent reports it clean again.
func (s *soak) feedFault(ctx context.Context) error {
	f := s.feed
	f.busy.Lock()
	defer f.busy.Unlock()
	s.mu.Lock()
	s.events["feed fault turn"]++
	ft := feedFaults[(s.events["feed fault turn"]-1)%len(feedFaults)]
	s.mu.Unlock()

	cur, err := os.ReadFile(filepath.Join(f.root, filepath.FromSlash(f.manifest)))
	if err != nil {
		return err
	}
	m, err := delivery.ParseManifest(cur)
	if err != nil {
		return err
	}
	good := m.Seq
	body, err := f.faultBody(ft.name, cur, m)
	if err != nil {
		return err
	}
	start := time.Now()
	f.mu.Lock()
	f.fault, f.body = ft.name, body
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.fault, f.body, f.corruptID = "", nil, ""
		f.mu.Unlock()
	}()
	if ft.reason == "hash-mismatch" {
		// A new delivery whose bytes the server corrupts: the manifest
		// is accepted, the delivery refused and retried.
		d, err := s.portal.MakeForFeed("feed-hash", &delivery.Credential{Store: storeName, Object: sapObject})
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.corruptID = d.ID
		f.mu.Unlock()
		if good, err = f.publish(d); err != nil {
			return err
		}
	}
	var seen string
	_, err = f.await(ctx, f.within(), func(fs *apitype.FeedStatus, _ *apitype.Status) bool {
		seen = fs.LastError
		return fs.LastErrorAt.After(start) && strings.Contains(fs.LastError, ft.reason)
	})
	if ctx.Err() != nil {
		return nil
	}
	f.mu.Lock()
	f.fig.Faults++
	f.mu.Unlock()
	if err != nil {
		return f.fail(fmt.Sprintf("feed fault %q: the agent did not report %q: %v", ft.name, ft.reason, err))
	}
	// The last good state: the good manifest stays accepted, and the
	// agent serves.
	_, err = f.await(ctx, time.Second, func(fs *apitype.FeedStatus, _ *apitype.Status) bool { return fs.Seq == good })
	if err == nil {
		_, err = s.resolveSap(ctx)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return f.fail(fmt.Sprintf("feed fault %q: the last good state did not stay in force: %v", ft.name, err))
	}
	f.mu.Lock()
	f.fig.FaultsRefused++
	f.fig.Reasons[ft.name] = trimReason(seen)
	f.fault, f.body = "", nil
	f.mu.Unlock()
	_, err = f.await(ctx, f.within(), func(fs *apitype.FeedStatus, _ *apitype.Status) bool {
		return fs.LastError == "" && fs.Pending == 0 && fs.Seq >= good
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return f.fail(fmt.Sprintf("feed fault %q: the agent did not recover once the feed was healed: %v", ft.name, err))
	}
	return nil
}

// faultBody is what a fault serves in place of the manifest cur (m).
func (f *soakFeed) faultBody(name string, cur []byte, m *delivery.Manifest) ([]byte, error) {
	now := time.Now()
	switch name {
	case "truncated manifest":
		return cur[:len(cur)/2], nil
	case "slow drip":
		return cur, nil
	case "oversized manifest":
		return bytes.Repeat([]byte("x"), 2*feedMaxBytes), nil
	case "manifest rolled back to an older one":
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.prev == nil {
			return nil, errors.New("no earlier manifest to roll back to")
		}
		return f.prev, nil
	case "manifest signed by an unknown key":
		k, err := portal.GenerateSigningKey("ed25519")
		if err != nil {
			return nil, err
		}
		o, err := delivery.CreateManifest(m.To, m.Seq+1, now, now.Add(time.Hour), m.Deliveries, k)
		if err != nil {
			return nil, err
		}
		return o.Marshal(), nil
	case "expired manifest", "manifest with a bad signature":
		o, err := delivery.CreateManifest(m.To, m.Seq+1, now.Add(-2*time.Hour), now.Add(-time.Hour), m.Deliveries, f.pub.Signer)
		if err != nil {
			return nil, err
		}
		if name == "expired manifest" {
			return o.Marshal(), nil
		}
		// The current manifest with the signature of another.
		other := o.Marshal()
		i, j := bytes.LastIndex(cur, []byte("\nsignature: ")), bytes.LastIndex(other, []byte("\nsignature: "))
		if i < 0 || j < 0 {
			return nil, errors.New("no signature line in a manifest")
		}
		return append(slices.Clone(cur[:i]), other[j:]...), nil
	}
	return nil, nil
}

// trimReason shortens a status error for the figures: the part from the
// reason code on, without the feed's URL.
func trimReason(s string) string {
	if _, after, ok := strings.Cut(s, "/: "); ok {
		s = after
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

func hasCredential(st *apitype.Status, name string) bool {
	return slices.ContainsFunc(st.Credentials, func(c apitype.CredentialStatus) bool { return c.Name == name })
}

// feedResults are the figures of the run.
func (f *soakFeed) results() feedFigures {
	f.mu.Lock()
	defer f.mu.Unlock()
	fig := f.fig
	fig.Failures = slices.Clone(f.fig.Failures)
	ds := make([]time.Duration, len(f.fig.props))
	for i, p := range f.fig.props {
		ds[i] = time.Duration(p * float64(time.Second))
	}
	slices.Sort(ds)
	fig.PropP50S = rig.Round3(rig.Percentile(ds, 50).Seconds())
	if len(ds) > 0 {
		fig.PropMaxS = rig.Round3(ds[len(ds)-1].Seconds())
	}
	return fig
}
