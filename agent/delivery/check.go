package delivery

import (
	"crypto"
	"crypto/ecdh"
	"crypto/tls"
	"fmt"
	"time"
)

// Checker runs the agent's checks on a delivery, in the order SPEC.md gives.
// The agent (agent/inbox) and the test vectors both use it, so that the order
// is written down once.
type Checker struct {
	// MaxBytes bounds the file; zero means MaxBytes.
	MaxBytes int64
	// Signers are the pinned portal signing keys.
	Signers []crypto.PublicKey
	// MachineID is this machine's ID.
	MachineID string
	// InGroup reports whether this machine is in the named group. Nil: in no
	// group.
	InGroup func(group string) bool
	// MachineKey returns this machine's key with the given key ID, or nil.
	MachineKey func(keyID string) ecdh.KeyExchanger
	// GroupKey returns the key of group with the given key ID, or nil.
	GroupKey func(group, keyID string) ecdh.KeyExchanger
	// LastSeq returns the sequence number last applied to o, 0 if none.
	LastSeq func(o Object) uint64
	// Now is the time the expiry checks use.
	Now time.Time
	// IgnoreExpires skips check 4, the delivery's own expiry: the agent sets
	// it when it reloads the records of deliveries it applied before.
	IgnoreExpires bool
}

// Accepted is a delivery that passed every check.
type Accepted struct {
	*Delivery
	Content Content
	// Certificate is set for an application: chain and key, checked.
	Certificate *tls.Certificate
	// GroupPrivateKey is set for a group key.
	GroupPrivateKey *ecdh.PrivateKey
}

// Check parses b and runs every check of SPEC.md section "Checks" in order,
// returning the first failure. When the failure comes after parsing, the
// parsed delivery is returned with it (for logging its ID, kind and target;
// its fields are authentic only if the error is past the signature check).
func (c *Checker) Check(b []byte) (*Accepted, *Delivery, error) {
	limit := c.MaxBytes
	if limit <= 0 || limit > MaxBytes {
		limit = MaxBytes
	}
	// 1. Size.
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), limit)
	}
	// 2. Syntax.
	d, err := Parse(b)
	if err != nil {
		return nil, nil, err
	}
	a, err := c.CheckParsed(d)
	return a, d, err
}

// CheckParsed runs the checks that follow parsing (3 to 8) on d, for a
// caller that has parsed the file already and checked its size.
func (c *Checker) CheckParsed(d *Delivery) (*Accepted, error) {
	// 3. Signature.
	if err := d.Verify(c.Signers); err != nil {
		return nil, err
	}
	// 4. Expiry of the delivery itself.
	if !c.IgnoreExpires && !d.Expires.IsZero() && !c.Now.Before(d.Expires) {
		return nil, fmt.Errorf("%w: delivery %s expired at %s", ErrExpired, d.ID, d.Expires.Format(TimeLayout))
	}
	// 5. Address.
	switch d.To.Type {
	case ToMachine:
		if d.To.Name != c.MachineID {
			return nil, fmt.Errorf("%w: addressed to machine %q", ErrWrongRecipient, d.To.Name)
		}
	case ToGroup:
		if c.InGroup == nil || !c.InGroup(d.To.Name) {
			return nil, fmt.Errorf("%w: addressed to group %q", ErrWrongRecipient, d.To.Name)
		}
	}
	// 6. Sequence.
	if c.LastSeq != nil {
		if last := c.LastSeq(d.Object()); d.Seq <= last {
			return nil, fmt.Errorf("%w: %s seq %d, already at %d", ErrReplay, d.Object(), d.Seq, last)
		}
	}
	// 7. Key, open and decode.
	var key ecdh.KeyExchanger
	if d.Sealed() {
		switch {
		case d.To.Type == ToMachine && c.MachineKey != nil:
			key = c.MachineKey(d.Recipient)
		case d.To.Type == ToGroup && c.GroupKey != nil:
			key = c.GroupKey(d.To.Name, d.Recipient)
		}
		if key == nil {
			return nil, fmt.Errorf("%w: no key %s for %s", ErrWrongRecipient, d.Recipient, d.To)
		}
	}
	content, err := d.Open(key)
	if err != nil {
		return nil, err
	}
	a := &Accepted{Delivery: d, Content: content}
	// 8. Kind-specific checks.
	switch ct := content.(type) {
	case *Application:
		if a.Certificate, err = ct.Certificate(c.Now); err != nil {
			return nil, err
		}
	case *GroupKey:
		if a.GroupPrivateKey, err = ct.Key(); err != nil {
			ct.PrivateKey.Wipe()
			return nil, err
		}
	}
	return a, nil
}
