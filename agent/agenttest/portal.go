package agenttest

import (
	"crypto"
	"crypto/ecdh"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/secret"
)

// Portal makes deliveries for one agent, as credseal does: signed with the
// portal's key, addressed to the machine, sealed to its key when the kind
// is sealed, and written into its inbox. It is safe for concurrent use.
type Portal struct {
	// Inbox is the agent's inbox directory.
	Inbox string
	// Owner is the deliveries' owner header ("" for none).
	Owner string

	signingKeyFile, registrationFile string

	mu        sync.Mutex
	signer    crypto.Signer
	machineID string
	pub       *ecdh.PublicKey

	seq atomic.Uint64
}

// LoadPortal reads the portal's signing key (PEM PKCS#8) and the machine's
// registration document (as the agent writes it in its state directory).
// Sequence numbers start at the current time in milliseconds, so that a
// later run's deliveries supersede an earlier run's.
func LoadPortal(signingKeyFile, registrationFile, inbox string) (*Portal, error) {
	p := &Portal{Inbox: inbox, signingKeyFile: signingKeyFile, registrationFile: registrationFile}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	p.seq.Store(uint64(time.Now().UnixMilli()))
	return p, nil
}

// Reload reads the signing key and the registration again: after a key
// rotation the registration names the new machine key.
func (p *Portal) Reload() error {
	reg, pub, err := portal.LoadRegistration(p.registrationFile)
	if err != nil {
		return err
	}
	signer, err := portal.LoadSigningKey(p.signingKeyFile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.signer, p.machineID, p.pub = signer, reg.MachineID, pub
	p.mu.Unlock()
	return nil
}

// MachineID is the machine the deliveries are addressed to.
func (p *Portal) MachineID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.machineID
}

// MachinePub is the machine's public key, that sealed deliveries are
// sealed to.
func (p *Portal) MachinePub() *ecdh.PublicKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pub
}

// Signer is the portal's signing key, for what the portal signs besides
// deliveries (a feed's manifests).
func (p *Portal) Signer() crypto.Signer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signer
}

// NextSeq takes the next sequence number.
func (p *Portal) NextSeq() uint64 { return p.seq.Add(1) }

// Make creates a signed delivery for target with the next sequence number,
// sealed to the machine when its kind is sealed.
func (p *Portal) Make(target string, c delivery.Content) (*delivery.Delivery, error) {
	return p.MakeSeq(target, c, 0)
}

// MakeSeq is Make with sequence number seq (0: the next one), to make
// replays and supersessions on purpose.
func (p *Portal) MakeSeq(target string, c delivery.Content, seq uint64) (*delivery.Delivery, error) {
	var rcpt *ecdh.PublicKey
	if c.Kind().Sealed() {
		rcpt = p.MachinePub()
	}
	return p.Create(delivery.Header{Target: target, Seq: seq, To: delivery.Machine(p.MachineID())}, c, rcpt)
}

// MakeForFeed creates a delivery as Make does, but sealed whatever its
// kind except a revocation, as a feed requires (SPEC section 10.1).
func (p *Portal) MakeForFeed(target string, c delivery.Content) (*delivery.Delivery, error) {
	var rcpt *ecdh.PublicKey
	if c.Kind() != delivery.KindRevoke {
		rcpt = p.MachinePub()
	}
	return p.Create(delivery.Header{Target: target, To: delivery.Machine(p.MachineID())}, c, rcpt)
}

// Create signs a delivery of c with header h, sealed to rcpt (nil: not
// sealed), for deliveries to another address or sealed to another key (a
// group's). What h leaves empty is filled in: a new ID, the next sequence
// number, the time now and p.Owner.
func (p *Portal) Create(h delivery.Header, c delivery.Content, rcpt *ecdh.PublicKey) (*delivery.Delivery, error) {
	if h.ID == "" {
		h.ID = portal.NewID()
	}
	if h.Seq == 0 {
		h.Seq = p.NextSeq()
	}
	if h.Created.IsZero() {
		h.Created = time.Now().UTC().Truncate(time.Second)
	}
	if h.Owner == "" {
		h.Owner = p.Owner
	}
	p.mu.Lock()
	signer := p.signer
	p.mu.Unlock()
	d, err := delivery.Create(h, c, rcpt, signer)
	if err != nil {
		return nil, fmt.Errorf("delivery %s %s: %w", c.Kind(), h.Target, err)
	}
	return d, nil
}

// Drop makes a delivery and writes it into the inbox as the portal does
// (portal.Write). It returns the delivery.
func (p *Portal) Drop(target string, c delivery.Content) (*delivery.Delivery, error) {
	d, err := p.Make(target, c)
	if err != nil {
		return nil, err
	}
	_, err = portal.Write(d, p.Inbox, "")
	return d, err
}

// WriteRaw writes b into the inbox as name (WriteInbox), for bytes that
// are not a well-formed delivery.
func (p *Portal) WriteRaw(name string, b []byte) error { return WriteInbox(p.Inbox, name, b) }

// WriteInbox writes b into inbox as name the way the portal must: under a
// temporary name, then renamed into place.
func WriteInbox(inbox, name string, b []byte) error {
	tmp := filepath.Join(inbox, "."+name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(inbox, name))
}

// Application is the delivery content of a certificate and its key.
func Application(c tls.Certificate) (*delivery.Application, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, err
	}
	return &delivery.Application{Chain: c.Certificate, PrivateKey: secret.New(der)}, nil
}

// DevApplication is the fake CCP's dev application (DemoApp) as the portal
// delivers it: opened from its .p12, as credseal does.
func DevApplication(pki *fakeccp.DevPKI) (*delivery.Application, error) {
	raw, err := os.ReadFile(pki.AppP12File)
	if err != nil {
		return nil, err
	}
	pfx, err := portal.OpenPFX(raw, secret.FromString(fakeccp.DevP12Password), time.Now(), 0)
	if err != nil {
		return nil, err
	}
	return pfx.Application, nil
}

// DevStore is a store delivery for servers with the dev fixture's AppID and
// safe, trusting the dev CA.
func DevStore(pki *fakeccp.DevPKI, servers ...string) (*delivery.Store, error) {
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		return nil, err
	}
	return &delivery.Store{Servers: servers, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: string(ca)}, nil
}
