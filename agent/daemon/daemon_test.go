package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/logging"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/keystore"
)

// agentRun is one in-process agent in dev mode, logging to files in its dir.
type agentRun struct {
	dir      string
	cfg      config.Config
	reload   chan struct{}
	reloaded chan struct{}
	cancel   context.CancelFunc
	done     chan error
	events   chan inbox.Event
	client   *client.Client
	logs     *logging.Logs
}

func startAgent(t *testing.T, dir string) *agentRun {
	t.Helper()
	cfg, err := daemon.DevConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Format = "json"
	cfg.Log.Level = "debug" // the most talkative level, so the scan sees every line
	cfg.Log.File = filepath.Join(dir, "agent.log")
	cfg.Log.AuditFile = filepath.Join(dir, "audit.log")
	logs, err := logging.New(daemon.LogOptions(cfg), os.Stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &agentRun{dir: dir, cfg: cfg, reload: make(chan struct{}), reloaded: make(chan struct{}, 1), done: make(chan error, 1),
		events: make(chan inbox.Event, 64), client: client.New(cfg.Paths.Socket), logs: logs}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		a.done <- daemon.Run(ctx, daemon.Options{
			Config: cfg, Dev: true, DevDir: dir, Log: logs.Log, Audit: logs.Audit,
			Reload: a.reload, Reloaded: func() { a.reloaded <- struct{}{} }, SkipHardening: true,
			Ready:   func() { once.Do(func() { close(ready) }) },
			OnEvent: func(e inbox.Event) { a.events <- e },
		})
	}()
	select {
	case <-ready:
	case err := <-a.done:
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}
	return a
}

func (a *agentRun) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("Run returned %v after a clean stop", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop within 20s")
	}
	a.client.Close()
	a.logs.Close()
}

// doReload asks for a reload and waits until the agent has handled it.
func (a *agentRun) doReload(t *testing.T) {
	t.Helper()
	a.reload <- struct{}{}
	select {
	case <-a.reloaded:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload was not reported handled")
	}
}

// waitEvent waits for the inbox to handle a delivery of kind and target.
func (a *agentRun) waitEvent(t *testing.T, kind delivery.Kind, target string) inbox.Event {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case e := <-a.events:
			if e.Kind == kind && e.Target == target {
				return e
			}
		case <-timeout:
			t.Fatalf("no inbox event for %s %s", kind, target)
		}
	}
}

// portalSide seals and signs deliveries for one agent, as the portal does
// (agenttest.Portal), reading the agent's registration at every drop, so
// that a rotated machine key is sealed to.
type portalSide struct {
	t     *testing.T
	agent *agentRun
	pki   *fakeccp.DevPKI
	seq   uint64 // the last sequence number used
	owner string // the deliveries' owner header, if set
}

func (p *portalSide) drop(kind delivery.Kind, target string, content delivery.Content) {
	p.t.Helper()
	if content.Kind() != kind {
		p.t.Fatalf("drop: content of kind %s for a %s delivery", content.Kind(), kind)
	}
	pp, err := agenttest.LoadPortal(filepath.Join(p.agent.dir, daemon.DevSigningKeyFile),
		filepath.Join(p.agent.cfg.Paths.StateDir, daemon.DevRegistration), p.agent.cfg.Paths.InboxDir)
	if err != nil {
		p.t.Fatal(err)
	}
	pp.Owner = p.owner
	p.seq++
	d, err := pp.MakeSeq(target, content, p.seq)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := portal.Write(d, pp.Inbox, ""); err != nil {
		p.t.Fatal(err)
	}
}

func (p *portalSide) app() {
	p.t.Helper()
	app, err := agenttest.DevApplication(p.pki)
	if err != nil {
		p.t.Fatal(err)
	}
	p.drop(delivery.KindApplication, "DemoApp", app)
}

// devPKI makes (or reuses) the fake CCP's dev PKI under root/ccp.
func devPKI(t *testing.T, root string) *fakeccp.DevPKI { return agenttest.DevPKI(t, root) }

// startCCP starts a quiet fake CCP on pki's certificates, serving fix (nil:
// the dev fixture), and stops it when the test ends.
func startCCP(t *testing.T, pki *fakeccp.DevPKI, fix *fakeccp.Fixture) *fakeccp.Server {
	return agenttest.StartCCP(t, pki, fix, nil)
}

// TestEndToEnd runs the agent in-process against the fake CCP: deliveries
// in, a resolution out, a password rotation, a rejected delivery and a bad
// reload that leave the last good state in force, and a clean stop. Then it
// scans everything the agent wrote for the planted passwords and the
// application's private key.
func TestEndToEnd(t *testing.T) {
	root := t.TempDir()
	pki := devPKI(t, root)
	fix, err := pki.Fixture()
	if err != nil {
		t.Fatal(err)
	}
	srv := startCCP(t, pki, fix)

	a := startAgent(t, filepath.Join(root, "agent"))
	p := &portalSide{t: t, agent: a, pki: pki}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	p.app()
	a.waitEvent(t, delivery.KindApplication, "DemoApp")
	p.drop(delivery.KindStore, "rpa-prod", &delivery.Store{Servers: []string{srv.URL}, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: string(caPEM)})
	a.waitEvent(t, delivery.KindStore, "rpa-prod")
	p.drop(delivery.KindCredential, "sap-prod-admin", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"})
	a.waitEvent(t, delivery.KindCredential, "sap-prod-admin")

	ctx := context.Background()
	resolve := func(want string) {
		t.Helper()
		res, err := a.client.Resolve(ctx, "run-1", "flow-1", "sap-prod-admin")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Wipe()
		c := res.Get("sap-prod-admin")
		if c == nil || c.Err != nil {
			t.Fatalf("resolve: %+v", c)
		}
		if c.Username != "svc_sap" || c.Password.RevealString() != want {
			t.Fatalf("got user %q and a %d-byte password, want svc_sap and %q", c.Username, c.Password.Len(), want)
		}
	}
	resolve("Sap-Pr0d!pass")

	// A rotated password is seen on the next resolve: nothing is cached.
	const rotated = "R0tated-Pa55!word"
	if err := srv.SetPassword("RPA-Prod", "Root", "sap-prod-admin", rotated); err != nil {
		t.Fatal(err)
	}
	resolve(rotated)

	// A corrupt delivery is rejected with a reason; the last good state stays.
	if err := os.WriteFile(filepath.Join(a.cfg.Paths.InboxDir, "corrupt.delivery"), []byte("credagent-delivery/v1\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if e := a.waitEvent(t, "", ""); e.Err == nil {
		t.Fatalf("the corrupt delivery was applied: %+v", e)
	}
	st, err := a.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rejected) == 0 || st.Rejected[len(st.Rejected)-1].Reason == "" {
		t.Fatalf("status shows no rejection with a reason: %+v", st.Rejected)
	}
	if !st.Ready || st.KeyStore.Backend != "file" || len(st.Applications) != 1 {
		t.Fatalf("status after a rejection: %+v", st)
	}
	// The store's server, as the agent's CCP client saw it: both
	// resolutions so far went to it.
	if len(st.Stores) != 1 || len(st.Stores[0].ServerHealth) != 1 {
		t.Fatalf("status stores: %+v, want one store with its one server's health", st.Stores)
	}
	if sv := st.Stores[0].ServerHealth[0]; sv.Server != st.Stores[0].Servers[0] || sv.Successes != 2 || sv.Errors != 0 || sv.LastSuccess.IsZero() || sv.TLS12Fallback {
		t.Errorf("server health %+v, want 2 successes at %s and nothing else", sv, st.Stores[0].Servers[0])
	}
	resolve(rotated)

	// A config that does not load is rejected on reload; the agent keeps
	// serving with the running one.
	if err := os.WriteFile(filepath.Join(a.dir, "config.yaml"), []byte("policy:\n  rulez: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.doReload(t)
	resolve(rotated)

	// A config that loads and drops the caller's rule takes effect at once.
	if err := os.WriteFile(filepath.Join(a.dir, "config.yaml"), []byte("policy:\n  rules:\n    - {name: only-nobody, uids: [65534], credentials: ['*']}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.doReload(t)
	if _, err := a.client.Resolve(ctx, "run-2", "flow-1", "sap-prod-admin"); !apitype.IsForbidden(err) {
		t.Fatalf("after the reload the caller should be refused, got %v", err)
	}
	a.stop(t)

	// Restarting rebuilds the state from the sealed records alone.
	os.Remove(filepath.Join(a.dir, "config.yaml"))
	a2 := startAgent(t, a.dir)
	st2, err := a2.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st2.Applications) != 1 || len(st2.Stores) != 1 || len(st2.Credentials) != 1 {
		t.Fatalf("state after restart: %+v", st2)
	}
	func() {
		res, err := a2.client.Resolve(ctx, "run-3", "flow-1", "sap-prod-admin")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Wipe()
		if c := res.Get("sap-prod-admin"); c.Err != nil || c.Password.RevealString() != rotated {
			t.Fatalf("resolve after restart: %+v", c)
		}
	}()
	a2.stop(t)

	scanForSecrets(t, a.dir, append(fix.Passwords(), rotated), pki)
	for _, f := range []string{"agent.log", "audit.log"} {
		b, _ := os.ReadFile(filepath.Join(a.dir, f))
		if len(b) == 0 {
			t.Errorf("%s is empty: the scan proved nothing", f)
		}
	}
	audit, _ := os.ReadFile(filepath.Join(a.dir, "audit.log"))
	if !strings.Contains(string(audit), `"run_id":"run-1"`) {
		t.Errorf("the audit log has no record of run-1:\n%s", audit)
	}
}

// scanForSecrets fails if any file under dir holds a password or the
// application's private key, in any common encoding.
func scanForSecrets(t *testing.T, dir string, passwords []string, pki *fakeccp.DevPKI) {
	t.Helper()
	agenttest.NoSecretsInDir(t, dir, agenttest.Needles(t, pki, passwords...), 5)
}

// TestNeedsReenroll: a machine key that no longer loads does not crash the
// agent. It starts, says it needs re-enrolment, and keeps the deliveries.
func TestNeedsReenroll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	a := startAgent(t, dir)
	a.stop(t)

	keyFile := filepath.Join(a.cfg.KeyStore.Dir, a.cfg.KeyStore.KeyName+".key")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(a.cfg.Paths.InboxDir, "waiting.delivery")
	if err := os.WriteFile(pending, []byte("sealed to the old key"), 0o600); err != nil {
		t.Fatal(err)
	}
	a2 := startAgent(t, dir)
	defer a2.stop(t)
	st, err := a2.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyStore.NeedsReenroll == "" || st.Ready || len(st.Problems) == 0 || !strings.Contains(st.Problems[0], "re-enrol") {
		t.Fatalf("status does not say the machine needs re-enrolment: %+v", st)
	}
	if _, err := os.Stat(pending); err != nil {
		t.Fatalf("a delivery that could not be opened was not kept: %v", err)
	}
}

// TestMachineKeyRotation: after `enroll --rotate` the agent opens deliveries
// sealed to either key, and once the applications are re-sealed to the new
// key it promotes it and destroys the old one.
func TestMachineKeyRotation(t *testing.T) {
	root := t.TempDir()
	pki, err := fakeccp.EnsureDevPKI(filepath.Join(root, "ccp"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "agent")
	a := startAgent(t, dir)
	p := &portalSide{t: t, agent: a, pki: pki}
	p.app()
	a.waitEvent(t, delivery.KindApplication, "DemoApp")
	oldReg, _, err := portal.LoadRegistration(filepath.Join(a.cfg.Paths.StateDir, "registration.json"))
	if err != nil {
		t.Fatal(err)
	}
	a.stop(t)

	ks, err := keystore.Open(keystore.Options{Backend: a.cfg.KeyStore.Backend, Dir: a.cfg.KeyStore.Dir})
	if err != nil {
		t.Fatal(err)
	}
	pending, created, err := keystore.Rotate(ks, a.cfg.KeyStore.KeyName)
	if err != nil || !created {
		t.Fatalf("Rotate: %v (created %v)", err, created)
	}
	ks.Close()

	a2 := startAgent(t, dir)
	defer a2.stop(t)
	reg, _, err := portal.LoadRegistration(filepath.Join(a2.cfg.Paths.StateDir, "registration.json"))
	if err != nil {
		t.Fatal(err)
	}
	if reg.KeyID != pending.ID() || reg.KeyID == oldReg.KeyID {
		t.Fatalf("during the rotation the registration names %s, want the pending key %s", reg.KeyID, pending.ID())
	}
	st, err := a2.client.Status(context.Background())
	if err != nil || len(st.Applications) != 1 {
		t.Fatalf("the application sealed to the old key is not in force during the rotation: %v %+v", err, st)
	}

	// The portal re-seals the application to the new key.
	p.agent = a2
	p.seq = uint64(time.Now().UnixNano())
	p.app()
	a2.waitEvent(t, delivery.KindApplication, "DemoApp")
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir(a2.cfg.KeyStore.Dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) == 1 && names[0] == a2.cfg.KeyStore.KeyName+keystore.FileExt {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotation did not finish: key dir holds %v", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ks2, err := keystore.Open(keystore.Options{Backend: a2.cfg.KeyStore.Backend, Dir: a2.cfg.KeyStore.Dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ks2.Close()
	k, err := ks2.Open(a2.cfg.KeyStore.KeyName)
	if err != nil || k.ID() != pending.ID() {
		t.Fatalf("after promotion the machine key is %v (%v), want %s", k, err, pending.ID())
	}
}

// TestMissingKeyIsNotRecreated: when the machine key is gone but the state
// shows this machine had one (a registration, sealed records), the agent
// does not make a new key on its own; status says to run enroll --rotate.
func TestMissingKeyIsNotRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	a := startAgent(t, dir)
	a.stop(t)
	keyFile := filepath.Join(a.cfg.KeyStore.Dir, a.cfg.KeyStore.KeyName+".key")
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	a2 := startAgent(t, dir)
	defer a2.stop(t)
	st, err := a2.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.KeyStore.NeedsReenroll, "missing") || !strings.Contains(st.KeyStore.NeedsReenroll, "enroll --rotate") || st.Ready {
		t.Fatalf("status does not say the key is missing: %+v", st.KeyStore)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Fatal("a new machine key was created although a registration exists")
	}
}
