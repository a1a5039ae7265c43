package feed

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/deliverytest"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/state"
	"github.com/rs/zerolog"
)

type memKey struct{ *ecdh.PrivateKey }

func (k memKey) ID() string { return delivery.KeyID(k.PublicKey()) }

var (
	machineKey = deliverytest.ECDHKey("feed test machine key")
	groupKey   = deliverytest.ECDHKey("feed test group key")
	signer     = ed25519.NewKeyFromSeed(deliverytest.Seed("feed test signer"))
	rogue      = ed25519.NewKeyFromSeed(deliverytest.Seed("feed test rogue signer"))
)

const machineID = "machine-01"

// server serves a feed tree as a static web server does (ETag and
// If-None-Match included), with an optional fault in front.
type server struct {
	root        string
	ts          *httptest.Server
	mu          sync.Mutex
	fault       http.HandlerFunc // set: handles every request instead
	requests    atomic.Int64
	notModified atomic.Int64
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault != nil {
		fault(w, r)
		return
	}
	b, err := os.ReadFile(filepath.Join(s.root, filepath.FromSlash(path.Clean(r.URL.Path))))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	if r.Header.Get("If-None-Match") == w.Header().Get("ETag") {
		s.notModified.Add(1)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (s *server) setFault(h http.HandlerFunc) { s.mu.Lock(); s.fault = h; s.mu.Unlock() }

type env struct {
	t      *testing.T
	srv    *server
	pub    *portal.Feed
	now    time.Time
	st     *state.State
	in     *inbox.Inbox
	feed   *Feed
	opts   Options
	seq    uint64
	stateD string
}

func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, now: time.Now().UTC().Truncate(time.Second), st: &state.State{}, stateD: filepath.Join(dir, "state")}
	e.srv = &server{root: filepath.Join(dir, "tree")}
	e.srv.ts = httptest.NewTLSServer(e.srv)
	t.Cleanup(e.srv.ts.Close)
	e.pub = &portal.Feed{Root: e.srv.root, Signer: signer, Now: func() time.Time { return e.now }}
	os.MkdirAll(filepath.Join(dir, "inbox"), 0o700)
	in, err := inbox.New(inbox.Options{
		InboxDir: filepath.Join(dir, "inbox"), StateDir: e.stateD, Signers: []crypto.PublicKey{signer.Public()},
		MachineKeys: []inbox.Key{memKey{machineKey}}, MachineID: machineID, State: e.st, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The inbox holds its directory open (on Windows without delete
	// sharing): let it go before the temporary directory is removed.
	t.Cleanup(func() { in.Close() })
	e.in = in
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.ts.Certificate().Raw})
	client, err := NewHTTPClient(ClientOptions{CABundle: ca})
	if err != nil {
		t.Fatal(err)
	}
	e.opts = Options{URLs: []string{e.srv.ts.URL + "/feed"}, Client: client, Signers: []crypto.PublicKey{signer.Public()},
		MachineID: machineID, StateDir: e.stateD, Inbox: in, Log: zerolog.Nop(), Timeout: 2 * time.Second,
		Now: func() time.Time { return e.now }}
	e.srv.root = filepath.Join(dir, "tree")
	e.pub.Root = filepath.Join(e.srv.root, "feed")
	if tweak != nil {
		tweak(&e.opts)
	}
	e.restart()
	return e
}

// restart makes a new Feed over the same state directory.
func (e *env) restart() {
	e.t.Helper()
	f, err := New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.feed = f
}

func (e *env) store(name string, server string) []byte {
	e.seq++
	d, err := delivery.Create(delivery.Header{ID: fmt.Sprintf("s%d", e.seq), Target: name, Seq: e.seq, To: delivery.Machine(machineID), Created: e.now},
		&delivery.Store{Servers: []string{server}, AppID: "app"}, machineKey.PublicKey(), signer)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Marshal()
}

func (e *env) publish(raws ...[]byte) {
	e.t.Helper()
	if _, err := e.pub.Publish(raws); err != nil {
		e.t.Fatal(err)
	}
	e.now = e.now.Add(time.Second) // the next manifest gets a higher seq
}

func (e *env) poll() Status {
	e.t.Helper()
	e.feed.Poll(context.Background())
	return e.feed.Status()[0]
}

func (e *env) server(name string) string {
	if s := e.st.Load().Stores[name]; s != nil {
		return s.Servers[0]
	}
	return ""
}

func (e *env) manifestPath() string {
	return filepath.Join(e.pub.Root, delivery.FeedDir(delivery.Machine(machineID)), delivery.ManifestName)
}

func TestPollAppliesAndIdlesOn304(t *testing.T) {
	e := newEnv(t, nil)
	e.publish(e.store("prod", "https://ccp1.example.com"))
	st := e.poll()
	if st.LastError != "" || st.Seq == 0 || e.server("prod") != "https://ccp1.example.com" {
		t.Fatalf("first poll: %+v, store %q", st, e.server("prod"))
	}
	// Idle: one conditional GET, answered 304, nothing else.
	before := e.srv.requests.Load()
	st = e.poll()
	if got := e.srv.requests.Load() - before; got != 1 || e.srv.notModified.Load() != 1 {
		t.Fatalf("idle poll made %d requests, %d answered 304", got, e.srv.notModified.Load())
	}
	if st.LastError != "" {
		t.Fatal(st.LastError)
	}
	// A newer store is applied.
	e.publish(e.store("prod", "https://ccp2.example.com"))
	if st = e.poll(); e.server("prod") != "https://ccp2.example.com" || st.LastError != "" {
		t.Fatalf("rotation not applied: %+v", st)
	}
}

func TestUnlistedIsNotRemoved(t *testing.T) {
	e := newEnv(t, nil)
	e.publish(e.store("prod", "https://ccp1.example.com"))
	e.poll()
	m, err := delivery.CreateManifest(delivery.Machine(machineID), uint64(e.now.UnixMilli())+100, e.now, e.now.Add(time.Hour), nil, signer)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(e.manifestPath(), m.Marshal(), 0o644)
	st := e.poll()
	if st.Seq != m.Seq || st.Deliveries != 0 {
		t.Fatalf("empty manifest not accepted: %+v", st)
	}
	if e.server("prod") == "" {
		t.Fatal("a store the manifest no longer lists was removed")
	}
	// A revocation does remove it.
	d, _ := delivery.Create(delivery.Header{ID: "rev", Target: "prod", Seq: 99, To: delivery.Machine(machineID), Created: e.now},
		&delivery.Revoke{Revokes: delivery.KindStore}, nil, signer)
	e.publish(d.Marshal())
	if st := e.poll(); e.server("prod") != "" || st.LastError != "" {
		t.Fatalf("revocation not applied: %+v", st)
	}
}

// ownedStore is a store of owner ("" for none), sealed to the machine.
func (e *env) ownedStore(id, name, owner string, seq uint64, server string) []byte {
	d, err := delivery.Create(delivery.Header{ID: id, Target: name, Owner: owner, Seq: seq, To: delivery.Machine(machineID), Created: e.now},
		&delivery.Store{Servers: []string{server}, AppID: "app"}, machineKey.PublicKey(), signer)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Marshal()
}

// TestOwnersSideBySide: stores of one name of two owners and of none come
// through one manifest as three objects, each with its own sequence, and a
// newer delivery or a revocation of one owner's leaves the others alone.
func TestOwnersSideBySide(t *testing.T) {
	e := newEnv(t, nil)
	e.publish(e.ownedStore("p0", "prod", "", 7, "https://none.example.com"),
		e.ownedStore("pa", "prod", "team-a", 1, "https://a1.example.com"),
		e.ownedStore("pb", "prod", "team-b", 1, "https://b.example.com"))
	if st := e.poll(); st.LastError != "" || st.Deliveries != 3 {
		t.Fatalf("first poll: %+v", st)
	}
	servers := func() [3]string {
		s := e.st.Load().Stores
		var out [3]string
		for i, o := range []string{"", "team-a", "team-b"} {
			if x := s[state.Key(o, "prod")]; x != nil {
				out[i] = x.Servers[0]
			}
		}
		return out
	}
	if got, want := servers(), [3]string{"https://none.example.com", "https://a1.example.com", "https://b.example.com"}; got != want {
		t.Fatalf("stores %v, want %v", got, want)
	}
	for _, c := range []struct {
		owner string
		seq   uint64
	}{{"", 7}, {"team-a", 1}, {"team-b", 1}} {
		if got := e.in.LastSeq(delivery.Object{Kind: delivery.KindStore, Owner: c.owner, Name: "prod"}); got != c.seq {
			t.Fatalf("LastSeq of %q's prod = %d, want %d", c.owner, got, c.seq)
		}
	}
	// team-a's newer store: one manifest and one delivery fetched, the
	// other two are not fetched again (their sequences are per owner).
	e.publish(e.ownedStore("pa2", "prod", "team-a", 2, "https://a2.example.com"))
	before := e.srv.requests.Load()
	if st := e.poll(); st.LastError != "" {
		t.Fatal(st.LastError)
	}
	if got := e.srv.requests.Load() - before; got != 2 {
		t.Fatalf("the poll after team-a's new store made %d requests, want 2 (manifest, delivery)", got)
	}
	if got, want := servers(), [3]string{"https://none.example.com", "https://a2.example.com", "https://b.example.com"}; got != want {
		t.Fatalf("stores %v, want %v", got, want)
	}
	// Revoking team-b's store removes that one only.
	d, err := delivery.Create(delivery.Header{ID: "rb", Target: "prod", Owner: "team-b", Seq: 2, To: delivery.Machine(machineID), Created: e.now},
		&delivery.Revoke{Revokes: delivery.KindStore}, nil, signer)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(d.Marshal())
	if st := e.poll(); st.LastError != "" {
		t.Fatal(st.LastError)
	}
	if got, want := servers(), [3]string{"https://none.example.com", "https://a2.example.com", ""}; got != want {
		t.Fatalf("after revoking team-b's: stores %v, want %v", got, want)
	}
}

func TestGroupsAfterMachine(t *testing.T) {
	e := newEnv(t, nil)
	gk, _ := delivery.Create(delivery.Header{ID: "gk", Target: "robots", Seq: 1, To: delivery.Machine(machineID), Created: e.now},
		&delivery.GroupKey{PrivateKey: secret.New(groupKey.Bytes())}, machineKey.PublicKey(), signer)
	cred, _ := delivery.Create(delivery.Header{ID: "cred", Target: "c1", Seq: 1, To: delivery.Group("robots"), Created: e.now},
		&delivery.Credential{Store: "prod", Object: "o"}, groupKey.PublicKey(), signer)
	e.publish(gk.Marshal(), cred.Marshal())
	e.poll()
	if e.st.Load().Credentials["c1"] == nil {
		t.Fatalf("the group's credential was not applied in the same poll: %+v", e.feed.Status())
	}
	sts := e.feed.Status()
	if len(sts) != 2 || sts[1].Address != "group robots" || sts[1].Seq == 0 {
		t.Fatalf("status %+v", sts)
	}
}

func TestFailover(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "https://" + dead.Addr().String() + "/feed"
	dead.Close()
	e := newEnv(t, func(o *Options) { o.URLs = append([]string{deadURL}, o.URLs...) })
	e.publish(e.store("prod", "https://ccp1.example.com"))
	if st := e.poll(); st.Seq == 0 || e.server("prod") == "" || !strings.HasSuffix(st.URL, "/feed/") {
		t.Fatalf("no failover to the second URL: %+v", st)
	}
}

func TestRollbackAcrossRestart(t *testing.T) {
	e := newEnv(t, nil)
	e.publish(e.store("prod", "https://ccp1.example.com"))
	e.poll()
	old, _ := os.ReadFile(e.manifestPath())
	e.publish(e.store("prod", "https://ccp2.example.com"))
	good := e.poll()
	os.WriteFile(e.manifestPath(), old, 0o644)
	e.restart()
	st := e.poll()
	if !strings.Contains(st.LastError, "rollback") || st.Seq != good.Seq || e.server("prod") != "https://ccp2.example.com" {
		t.Fatalf("rollback after restart: %+v, store %q", st, e.server("prod"))
	}
}

// Each bad input is refused with its reason in status, and the last good
// state keeps serving.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
		want  string
	}{
		{"bad signature", func(e *env) {
			e.publish(e.store("prod", "https://bad.example.com"))
			b, _ := os.ReadFile(e.manifestPath())
			i := bytes.Index(b, []byte(`"sha256":"`)) + len(`"sha256":"`)
			b[i] = map[bool]byte{true: '1', false: '0'}[b[i] == '0']
			os.WriteFile(e.manifestPath(), b, 0o644)
		}, "bad-signature"},
		{"unknown signer", func(e *env) {
			m, _ := delivery.CreateManifest(delivery.Machine(machineID), uint64(e.now.UnixMilli())+10, e.now, e.now.Add(time.Hour), nil, rogue)
			os.WriteFile(e.manifestPath(), m.Marshal(), 0o644)
		}, "unknown-signer"},
		{"rollback", func(e *env) {
			m, _ := delivery.CreateManifest(delivery.Machine(machineID), 1, e.now, e.now.Add(time.Hour), nil, signer)
			os.WriteFile(e.manifestPath(), m.Marshal(), 0o644)
		}, "rollback"},
		{"expired", func(e *env) {
			m, _ := delivery.CreateManifest(delivery.Machine(machineID), uint64(e.now.UnixMilli())+10, e.now.Add(-2*time.Hour), e.now.Add(-time.Hour), nil, signer)
			os.WriteFile(e.manifestPath(), m.Marshal(), 0o644)
		}, "expired"},
		{"other address", func(e *env) {
			m, _ := delivery.CreateManifest(delivery.Machine("machine-02"), uint64(e.now.UnixMilli())+10, e.now, e.now.Add(time.Hour), nil, signer)
			os.WriteFile(e.manifestPath(), m.Marshal(), 0o644)
		}, "wrong-recipient"},
		{"hash mismatch", func(e *env) {
			raw := e.store("prod", "https://bad.example.com")
			e.publish(raw)
			d, _ := delivery.Parse(raw)
			other := e.store("prod", "https://bed.example.com") // the same size
			os.WriteFile(filepath.Join(e.pub.Root, delivery.FeedFile(d.To, d.ID)), other, 0o644)
		}, "hash-mismatch"},
		{"store in clear", func(e *env) {
			d, _ := delivery.Create(delivery.Header{ID: "clear", Target: "prod", Seq: 50, To: delivery.Machine(machineID), Created: e.now},
				&delivery.Store{Servers: []string{"https://bad.example.com"}, AppID: "app"}, nil, signer)
			raw := d.Marshal()
			os.WriteFile(filepath.Join(e.pub.Root, delivery.FeedFile(d.To, d.ID)), raw, 0o644)
			m, _ := delivery.CreateManifest(d.To, uint64(e.now.UnixMilli())+10, e.now, e.now.Add(time.Hour), []delivery.ManifestEntry{delivery.EntryFor(d, raw)}, signer)
			os.WriteFile(e.manifestPath(), m.Marshal(), 0o644)
		}, "not-sealed"},
		{"delivery refused by the inbox checks", func(e *env) {
			d, _ := delivery.Create(delivery.Header{ID: "exp", Target: "prod", Seq: 60, To: delivery.Machine(machineID), Created: e.now.Add(-time.Hour), Expires: e.now.Add(-time.Minute)},
				&delivery.Store{Servers: []string{"https://bad.example.com"}, AppID: "app"}, machineKey.PublicKey(), signer)
			e.publish(d.Marshal())
		}, "refused: expired"},
		{"oversized body", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				w.Write(bytes.Repeat([]byte("x"), 2<<20))
			})
		}, "too-large"},
		{"oversized announced", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(5<<20))
				w.WriteHeader(200)
			})
		}, "too-large"},
		{"slow drip", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				for i := 0; i < 100 && r.Context().Err() == nil; i++ {
					w.Write([]byte("x"))
					w.(http.Flusher).Flush()
					time.Sleep(100 * time.Millisecond)
				}
			})
		}, "network"},
		{"redirect to http", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://"+r.Host+r.URL.Path, http.StatusFound)
			})
		}, "not https"},
		{"HTML error page with 200", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html><body><h1>Service Unavailable</h1></body></html>\n"))
			})
		}, "malformed"},
		{"connection reset", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				c, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0)
					}
					c.Close()
				}
			})
		}, "network"},
		{"truncated manifest", func(e *env) {
			e.publish(e.store("prod", "https://bad.example.com"))
			b, _ := os.ReadFile(e.manifestPath())
			os.WriteFile(e.manifestPath(), b[:len(b)/2], 0o644)
		}, "malformed"},
		{"truncated in transit", func(e *env) {
			e.publish(e.store("prod", "https://bad.example.com"))
			b, _ := os.ReadFile(e.manifestPath())
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(b)))
				w.Write(b[:len(b)/2])
			})
		}, "network"},
		{"server error", func(e *env) {
			e.srv.setFault(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
		}, "http-status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.MaxManifestBytes = 64 << 10; o.Timeout = 1500 * time.Millisecond })
			e.publish(e.store("prod", "https://good.example.com"))
			good := e.poll()
			if good.LastError != "" || e.server("prod") != "https://good.example.com" {
				t.Fatalf("setup: %+v", good)
			}
			tt.setup(e)
			st := e.poll()
			if !strings.Contains(st.LastError, tt.want) {
				t.Fatalf("status error %q, want it to say %q", st.LastError, tt.want)
			}
			if got := e.server("prod"); got != "https://good.example.com" {
				t.Fatalf("the last good state is gone: store %q", got)
			}
			if st.Seq < good.Seq {
				t.Fatalf("status seq went back: %d < %d", st.Seq, good.Seq)
			}
		})
	}
}

func TestExpiredIsLoudAndFailsClosed(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.FailClosedAfter = time.Hour })
	e.pub.Validity = 2 * time.Hour
	e.publish(e.store("prod", "https://ccp1.example.com"))
	e.poll()
	if p := e.feed.Problems(); len(p) != 0 || e.feed.FailClosed() != "" {
		t.Fatalf("fresh feed: problems %v, fail closed %q", p, e.feed.FailClosed())
	}
	e.now = e.now.Add(2*time.Hour + time.Minute) // expired; the server still has only that manifest
	st := e.poll()
	if !st.Expired || !strings.Contains(st.LastError, "expired") {
		t.Fatalf("status %+v", st)
	}
	if p := e.feed.Problems(); len(p) != 1 || !strings.HasPrefix(p[0], "FEED STALE") {
		t.Fatalf("problems %v", p)
	}
	if e.feed.FailClosed() != "" {
		t.Fatal("failed closed before fail_closed_after")
	}
	e.now = e.now.Add(time.Hour)
	if !strings.Contains(e.feed.FailClosed(), "fail_closed_after") {
		t.Fatalf("not failing closed: %q", e.feed.FailClosed())
	}
	// A fresh manifest ends it.
	e.publish(e.store("prod", "https://ccp2.example.com"))
	e.poll()
	if e.feed.FailClosed() != "" || len(e.feed.Problems()) != 0 {
		t.Fatalf("still stale after a fresh manifest: %v", e.feed.Problems())
	}
}

func TestRunPollsAtStartAndOnSync(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Interval = time.Hour })
	e.publish(e.store("prod", "https://ccp1.example.com"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.feed.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.server("prod") == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.server("prod") == "" {
		t.Fatal("no poll at start")
	}
	e.publish(e.store("prod", "https://ccp2.example.com"))
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := e.feed.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	if e.server("prod") != "https://ccp2.example.com" {
		t.Fatal("Sync did not poll")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestParseBaseURL(t *testing.T) {
	for _, s := range []string{"http://feed.example.com", "https://u:p@feed.example.com", "https://feed.example.com/?a=1", "https://feed.example.com/#x", "https:///x", "feed.example.com"} {
		if _, err := ParseBaseURL(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	u, err := ParseBaseURL("https://feed.example.com/credagent")
	if err != nil || u.String() != "https://feed.example.com/credagent/" {
		t.Fatalf("%v %v", u, err)
	}
}

// Activity is reported for a manifest accepted or confirmed by a 304, not
// for a poll that accepted none.
func TestActivity(t *testing.T) {
	var got []time.Time
	var mu sync.Mutex
	e := newEnv(t, func(o *Options) {
		o.Activity = func(at time.Time) { mu.Lock(); got = append(got, at); mu.Unlock() }
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	e.publish(e.store("prod", "https://ccp1.example.com"))
	e.poll()
	e.poll() // 304
	if n := count(); n != 2 {
		t.Fatalf("%d activities after an accepted manifest and a 304, want 2", n)
	}
	e.srv.setFault(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
	if st := e.poll(); st.LastError == "" {
		t.Fatal("a 502 left no error")
	}
	if n := count(); n != 2 {
		t.Fatalf("a poll that accepted nothing reported activity (%d)", n)
	}
}
