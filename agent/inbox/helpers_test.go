package inbox

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/deliverytest"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/state"
	"github.com/rs/zerolog"
)

// memKey is an in-memory machine key for tests.
type memKey struct{ *ecdh.PrivateKey }

func (k memKey) ID() string { return delivery.KeyID(k.PublicKey()) }

var (
	seed     = deliverytest.Seed
	ecdhKey  = deliverytest.ECDHKey
	ecdsaKey = deliverytest.ECDSAKey
)

var (
	machineKey = ecdhKey("inbox test machine key")
	otherKey   = ecdhKey("inbox test other machine key")
	groupKeyA  = ecdhKey("inbox test group key A")
	groupKeyB  = ecdhKey("inbox test group key B")
	signer     = ed25519.NewKeyFromSeed(seed("inbox test signer"))
	rogue      = ed25519.NewKeyFromSeed(seed("inbox test rogue signer"))
	caKey      = ecdsaKey("inbox test CA")
	caCert     *x509.Certificate
)

const machineID = "machine-01"

func init() {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "inbox test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		panic(err)
	}
	caCert, _ = x509.ParseCertificate(der)
}

// newApp makes an application with a fresh key, valid from nb to na; with
// mismatch, the private key is not the certificate's.
func newApp(t testing.TB, serial int64, nb, na time.Time, mismatch bool) *delivery.Application {
	t.Helper()
	k := ecdsaKey(fmt.Sprintf("app key %d", serial))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "app"},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(nil, tmpl, caCert, k.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	if mismatch {
		k = ecdsaKey("some other key")
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	return &delivery.Application{Chain: [][]byte{der, caCert.Raw}, PrivateKey: secret.New(p8)}
}

func validApp(t testing.TB, serial int64) *delivery.Application {
	return newApp(t, serial, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour), false)
}

type env struct {
	t        testing.TB
	inbox    string
	stateDir string
	st       *state.State
	in       *Inbox
	events   chan Event
	opts     Options
}

func newEnv(t testing.TB, tweak func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, inbox: filepath.Join(dir, "inbox"), stateDir: filepath.Join(dir, "state"), st: &state.State{}, events: make(chan Event, 256)}
	if err := os.MkdirAll(e.inbox, 0o777); err != nil {
		t.Fatal(err)
	}
	e.opts = Options{
		InboxDir: e.inbox, StateDir: e.stateDir, Signers: []crypto.PublicKey{signer.Public()},
		MachineKeys: []Key{memKey{machineKey}}, MachineID: machineID, State: e.st,
		Rescan: time.Hour, Log: zerolog.Nop(),
		OnEvent: func(ev Event) { e.events <- ev },
	}
	if tweak != nil {
		tweak(&e.opts)
	}
	e.inbox, e.stateDir = e.opts.InboxDir, e.opts.StateDir
	e.reopen()
	return e
}

// reopen makes a new Inbox and State over the same directories, as a
// restart does, and loads the records.
func (e *env) reopen() {
	e.t.Helper()
	e.st = &state.State{}
	e.opts.State = e.st
	in, err := New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.in != nil {
		e.in.Close()
	}
	e.in = in
	e.t.Cleanup(func() { in.Close() })
	if err := in.Load(t_ctx()); err != nil {
		e.t.Fatal(err)
	}
}

var seqCounter uint64

func hdr(target string, seq uint64, to delivery.Address) delivery.Header {
	seqCounter++
	return delivery.Header{ID: fmt.Sprintf("d%d-%d", seq, seqCounter), Target: target, Seq: seq, To: to, Created: time.Now()}
}

func build(t testing.TB, h delivery.Header, c delivery.Content, to *ecdh.PublicKey, s crypto.Signer) []byte {
	t.Helper()
	d, err := delivery.Create(h, c, to, s)
	if err != nil {
		t.Fatal(err)
	}
	return d.Marshal()
}

// drop writes a delivery into the inbox as a portal would: a dot file
// renamed into place.
// next waits for the inbox's next event, for a bounded time: a delivery
// that is never handled fails the test by name instead of hanging it.
func (e *env) next() Event {
	e.t.Helper()
	select {
	case ev := <-e.events:
		return ev
	case <-time.After(30 * time.Second):
		e.t.Fatal("no inbox event within 30 s")
		return Event{}
	}
}

func (e *env) drop(name string, b []byte) string {
	e.t.Helper()
	tmp := filepath.Join(e.inbox, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.inbox, name)
	if err := os.Rename(tmp, p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// apply drops a delivery, scans, and fails the test unless it is applied.
func (e *env) apply(name string, b []byte) {
	e.t.Helper()
	e.drop(name, b)
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Err != nil {
		e.t.Fatalf("%s refused: %v", name, ev.Err)
	}
}
