//go:build linux

package faultmatrix

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
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
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/config"
	"github.com/rs/zerolog"
)

// sharedPKI is the dev CA, server and DemoApp certificates, made once per run.
var sharedPKI *fakeccp.DevPKI

// plantedPasswords are every password of the dev fixture (set with
// sharedPKI); no log may hold them, nor the application's key.
var plantedPasswords []string

// Fast client settings, so that failures show within the test budget. The
// rows assert bounds derived from them.
const (
	tRequest = 600 * time.Millisecond
	tRetries = 1
	tBackoff = 20 * time.Millisecond
)

// world is one agent (daemon.Run in this process) with its own directory, a
// fake CCP, and the portal's side: the signing key and the machine's
// registration, to seal and sign deliveries with.
type world struct {
	t   *testing.T
	dir string
	cfg config.Config
	ccp *fakeccp.Server
	// portal seals and signs for this agent; set once it has registered.
	portal *agenttest.Portal
	c      *client.Client

	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	events []inbox.Event
	logs   *agenttest.LockedBuffer
}

type worldOptions struct {
	// configure changes the agent's config before it starts.
	configure func(c *config.Config)
	// dev is dev mode (socket only for this user); default true unless
	// notDev.
	notDev bool
	// extraSerials are more client certificate serials the fake lets in as
	// DemoApp.
	extraSerials []string
	// beforeStart runs after the config is made and before the agent starts
	// (mount a tmpfs, plant a key file).
	beforeStart func(w *world)
	// noStart leaves the agent stopped; call start.
	noStart bool
}

// newWorld starts a fake CCP and an agent. Everything is stopped when the
// test ends.
func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), logs: &agenttest.LockedBuffer{}}

	fix, err := sharedPKI.Fixture()
	if err != nil {
		t.Fatal(err)
	}
	for i := range fix.Applications {
		if fix.Applications[i].AppID == "DemoApp" {
			a := &fix.Applications[i].Authentication
			a.CertificateSerialNumbers = append(a.CertificateSerialNumbers, o.extraSerials...)
		}
	}
	so := sharedPKI.ServerOptions()
	so.AdminAddr = "off"
	w.ccp, err = fakeccp.New(fix, so)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ccp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.ccp.SetFaults(fakeccp.Faults{})
		w.ccp.Close()
	})

	w.cfg, err = daemon.DevConfig(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	w.cfg.CCP.ConnectTimeout = tRequest
	w.cfg.CCP.TLSTimeout = tRequest
	w.cfg.CCP.RequestTimeout = tRequest
	w.cfg.CCP.Retries = tRetries
	w.cfg.CCP.RetryBackoff = tBackoff
	w.cfg.CCP.PasswordChangeWait = time.Second
	w.cfg.Inbox.RescanInterval = 200 * time.Millisecond
	w.cfg.API.ShutdownGrace = time.Second
	if o.configure != nil {
		o.configure(&w.cfg)
	}
	if o.beforeStart != nil {
		o.beforeStart(w)
	}
	if !o.noStart {
		if err := w.start(!o.notDev); err != nil {
			t.Fatalf("the agent did not start: %v", err)
		}
	}
	t.Cleanup(func() {
		w.stop()
		w.assertNoSecretsLogged()
	})
	return w
}

// start runs the agent until stop or the end of the test, and waits until
// it is ready. It returns the agent's error if it stopped instead.
func (w *world) start(dev bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	w.cancel, w.done = cancel, make(chan error, 1)
	log := zerolog.New(w.logs).With().Timestamp().Logger()
	go func() {
		w.done <- daemon.Run(ctx, daemon.Options{
			Config: w.cfg, Dev: dev, DevDir: w.dir, Log: log, Audit: log.With().Bool("audit", true).Logger(),
			Ready: func() { close(ready) }, OnEvent: w.onEvent, SkipHardening: true,
		})
	}()
	select {
	case <-ready:
	case err := <-w.done:
		cancel()
		w.cancel = nil
		return fmt.Errorf("daemon.Run returned %v", err)
	case <-time.After(10 * time.Second):
		return errors.New("not ready after 10 s")
	}
	if w.c == nil {
		w.c = client.New(w.cfg.Paths.Socket)
	}
	if fileExists(filepath.Join(w.cfg.Paths.StateDir, daemon.DevRegistration)) {
		return w.loadPortal()
	}
	return nil
}

// loadPortal reads the portal's signing key and the agent's registration,
// again after a restart; sequence numbers go on from where they were.
func (w *world) loadPortal() error {
	if w.portal != nil {
		return w.portal.Reload()
	}
	p, err := agenttest.LoadPortal(filepath.Join(w.dir, daemon.DevSigningKeyFile),
		filepath.Join(w.cfg.Paths.StateDir, daemon.DevRegistration), w.cfg.Paths.InboxDir)
	w.portal = p
	return err
}

func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Logf("agent stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		w.t.Error("the agent did not stop within 10 s")
	}
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}

func (w *world) onEvent(e inbox.Event) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
}

// event waits for the inbox's verdict on delivery id.
func (w *world) event(id string, within time.Duration) (inbox.Event, bool) {
	deadline := time.Now().Add(within)
	for {
		w.mu.Lock()
		for _, e := range w.events {
			if e.DeliveryID == id {
				w.mu.Unlock()
				return e, true
			}
		}
		w.mu.Unlock()
		if time.Now().After(deadline) {
			return inbox.Event{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// build makes a signed delivery of c to this machine, sealed to its key when
// the kind is sealed. seq 0 takes the next number.
func (w *world) build(target string, c delivery.Content, seq uint64) *delivery.Delivery {
	w.t.Helper()
	d, err := w.portal.MakeSeq(target, c, seq)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// drop writes raw delivery bytes into the inbox the way the portal does.
func (w *world) drop(name string, b []byte) {
	w.t.Helper()
	if err := agenttest.WriteInbox(w.cfg.Paths.InboxDir, name, b); err != nil {
		w.t.Fatal(err)
	}
}

// deliver drops d and waits for the verdict.
func (w *world) deliver(d *delivery.Delivery) inbox.Event {
	w.t.Helper()
	w.drop(d.ID+".delivery", d.Marshal())
	e, ok := w.event(d.ID, 5*time.Second)
	if !ok {
		w.t.Fatalf("delivery %s (%s %s) not handled within 5 s", d.ID, d.Kind, d.Target)
	}
	return e
}

// mustApply delivers and fails the test unless it was applied.
func (w *world) mustApply(target string, c delivery.Content) *delivery.Delivery {
	w.t.Helper()
	d := w.build(target, c, 0)
	if e := w.deliver(d); e.Err != nil {
		w.t.Fatalf("delivery %s %s refused: %s: %v", d.Kind, target, e.Reason, e.Err)
	}
	return d
}

func appContent(t *testing.T, c tls.Certificate) *delivery.Application {
	t.Helper()
	a, err := agenttest.Application(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func caPEM(p *fakeccp.DevPKI) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.CA.Raw}))
}

// storeFor is the store delivery for servers, trusting the shared dev CA.
func storeFor(servers ...string) *delivery.Store {
	return &delivery.Store{Servers: servers, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: caPEM(sharedPKI)}
}

// provision delivers the DemoApp certificate, the store "prod" (servers, or
// the fake when none are given) and the credentials the rows use:
// sap (sap-prod-admin), rotating (change in progress), dup (two matches),
// missing (no such object).
func (w *world) provision(servers ...string) {
	w.t.Helper()
	if len(servers) == 0 {
		servers = []string{w.ccp.URL}
	}
	w.mustApply("DemoApp", appContent(w.t, sharedPKI.App))
	w.mustApply("prod", storeFor(servers...))
	w.mustApply("sap", &delivery.Credential{Store: "prod", Object: "sap-prod-admin"})
	w.mustApply("rotating", &delivery.Credential{Store: "prod", Object: "rotating-admin"})
	w.mustApply("dup", &delivery.Credential{Store: "prod", Query: "UserName=shared_user"})
	w.mustApply("missing", &delivery.Credential{Store: "prod", Object: "no-such-object"})
}

// outcome is one name's answer, with how long the whole call took.
type outcome struct {
	took     time.Duration
	reqErr   error // the whole request failed
	cred     *client.Credential
	class    string // per-name or request-level class, "" on success
	code     string
	password string // only to compare; never logged
}

func (w *world) resolve(name string) outcome {
	w.t.Helper()
	return resolveWith(w.c, name)
}

func resolveWith(c *client.Client, name string) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.Resolve(ctx, "faultmatrix", "faultmatrix", name)
	o := outcome{took: time.Since(start), reqErr: err}
	if err != nil {
		var ce *client.Error
		if errors.As(err, &ce) {
			o.class, o.code = string(ce.Class), ce.Code
		} else {
			o.class = "agent_unreachable"
		}
		return o
	}
	defer res.Wipe()
	cr := res.Get(name)
	if cr == nil {
		o.class = "missing_answer"
		return o
	}
	cp := *cr
	o.cred = &cp
	if cr.Err != nil {
		o.class, o.code = string(cr.Err.Class), cr.Err.Code
		return o
	}
	o.password = string(cr.Password.Reveal())
	return o
}

func (o outcome) String() string {
	if o.class == "" {
		return fmt.Sprintf("served in %v", o.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("class %q code %q after %v (%v)", o.class, o.code, o.took.Round(time.Millisecond), o.reqErr)
}

func (w *world) status() *apitype.Status {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := w.c.Status(ctx)
	if err != nil {
		w.t.Fatalf("status: %v", err)
	}
	return s
}

// expectServed fails unless name resolves to want.
func (w *world) expectServed(name, want string) outcome {
	w.t.Helper()
	o := w.resolve(name)
	if o.class != "" {
		w.t.Fatalf("resolve %s: %v, want it served", name, o)
	}
	if want != "" && o.password != want {
		w.t.Fatalf("resolve %s: wrong password (%d bytes)", name, len(o.password))
	}
	return o
}

// expectClass fails unless name fails with class (and code, if given) within
// bound.
func (w *world) expectClass(name, class, code string, bound time.Duration) outcome {
	w.t.Helper()
	o := w.resolve(name)
	if o.class != class || (code != "" && o.code != code) {
		w.t.Fatalf("resolve %s: %v; want class %q code %q", name, o, class, code)
	}
	if bound > 0 && o.took > bound {
		w.t.Fatalf("resolve %s took %v, bound %v", name, o.took, bound)
	}
	return o
}

// assertNoSecretsLogged checks the agent's logs and audit for the planted
// passwords and the application private key, in every common encoding.
func (w *world) assertNoSecretsLogged() {
	agenttest.NoSecrets(w.t, "the agent's log", w.logs.Bytes(), agenttest.Needles(w.t, sharedPKI, plantedPasswords...))
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func contains(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) }
