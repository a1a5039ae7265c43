package rig

import (
	"crypto"
	"crypto/ecdh"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
)

// Portal makes deliveries for one agent, as credseal does: signed with the
// portal's key, addressed to the machine, sealed to its key when the kind
// is sealed, and written into its inbox.
type Portal struct {
	Signer    crypto.Signer
	MachineID string
	Pub       *ecdh.PublicKey
	Inbox     string
	seq       atomic.Uint64
}

// LoadPortal reads the portal's signing key (PEM PKCS#8) and the machine's
// registration document (as the agent writes it in its state directory).
// Sequence numbers start at the current time in milliseconds, so that a
// later run's deliveries supersede an earlier run's.
func LoadPortal(signingKeyFile, registrationFile, inbox string) (*Portal, error) {
	reg, pub, err := portal.LoadRegistration(registrationFile)
	if err != nil {
		return nil, err
	}
	signer, err := portal.LoadSigningKey(signingKeyFile)
	if err != nil {
		return nil, err
	}
	p := &Portal{Signer: signer, MachineID: reg.MachineID, Pub: pub, Inbox: inbox}
	p.seq.Store(uint64(time.Now().UnixMilli()))
	return p, nil
}

// Make creates a signed delivery for target with the next sequence number,
// sealed to the machine when its kind is secret.
func (p *Portal) Make(target string, c delivery.Content) (*delivery.Delivery, error) {
	return p.make(target, c, c.Kind().Sealed())
}

// MakeForFeed creates a delivery as Make does, sealed whatever its kind but
// a revocation, as a feed requires (SPEC section 10.1).
func (p *Portal) MakeForFeed(target string, c delivery.Content) (*delivery.Delivery, error) {
	return p.make(target, c, c.Kind() != delivery.KindRevoke)
}

func (p *Portal) make(target string, c delivery.Content, sealed bool) (*delivery.Delivery, error) {
	h := delivery.Header{
		ID:      portal.NewID(),
		Target:  target,
		Seq:     p.seq.Add(1),
		Created: time.Now().UTC().Truncate(time.Second),
		To:      delivery.Machine(p.MachineID),
	}
	var rcpt *ecdh.PublicKey
	if sealed {
		rcpt = p.Pub
	}
	return delivery.Create(h, c, rcpt, p.Signer)
}

// Drop makes a delivery and writes it into the inbox as the portal does
// (portal.Write). It returns the delivery.
func (p *Portal) Drop(target string, c delivery.Content) (*delivery.Delivery, error) {
	d, err := p.Make(target, c)
	if err != nil {
		return nil, fmt.Errorf("delivery %s: %w", target, err)
	}
	_, err = portal.Write(d, p.Inbox, "")
	return d, err
}
