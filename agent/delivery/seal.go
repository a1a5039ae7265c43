package delivery

import (
	"crypto"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// The HPKE suite: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM,
// base mode (RFC 9180 identifiers 0x0010, 0x0001, 0x0002).
var (
	suiteKDF  = hpke.HKDFSHA256()
	suiteAEAD = hpke.AES256GCM()
)

// info is the HPKE info string: every value that places the sealed payload
// in its delivery, each preceded by its length as two big-endian bytes. The
// owner, when there is one, comes last, so that deliveries without an owner
// keep the info string they always had.
func info(h *Header) []byte {
	var b []byte
	vals := []string{
		Version,
		string(h.Kind),
		h.Recipient,
		h.ID,
		strconv.FormatUint(h.Seq, 10),
		string(h.To.Type),
		h.To.Name,
		h.Target,
	}
	if h.Owner != "" {
		vals = append(vals, h.Owner)
	}
	for _, v := range vals {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	return b
}

// Create builds and signs a delivery of content c. It takes the kind (and
// for a revocation, the revoked kind) from c, seals the payload to recipient
// when recipient is set (required for an application or group key; optional
// for a store or credential; a revocation has nothing to seal), and fills
// h.Recipient and h.Signer. h.ID, h.Target, h.Seq, h.To and h.Created must
// be set; Created and Expires are truncated to whole seconds in UTC.
func Create(h Header, c Content, recipient *ecdh.PublicKey, signer crypto.Signer) (*Delivery, error) {
	h.Kind = c.Kind()
	h.Revokes = ""
	if r, ok := c.(*Revoke); ok {
		h.Revokes = r.Revokes
	}
	h.Created = h.Created.UTC().Truncate(1e9)
	if !h.Expires.IsZero() {
		h.Expires = h.Expires.UTC().Truncate(1e9)
	}
	switch {
	case recipient == nil && h.Kind.Sealed():
		return nil, fmt.Errorf("%w: kind %s must be sealed to a P-256 key", ErrInvalid, h.Kind)
	case recipient == nil:
		h.Recipient = ""
	case !h.Kind.Sealable():
		return nil, fmt.Errorf("%w: kind %s is not sealed", ErrInvalid, h.Kind)
	case recipient.Curve() != ecdh.P256():
		return nil, fmt.Errorf("%w: kind %s must be sealed to a P-256 key", ErrInvalid, h.Kind)
	default:
		h.Recipient = KeyID(recipient)
	}
	var err error
	if h.Signer, err = SignerID(signer.Public()); err != nil {
		return nil, err
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	plain, err := c.marshal()
	if err != nil {
		return nil, err
	}
	payload := plain
	if h.Sealed() {
		pk, err := hpke.NewDHKEMPublicKey(recipient)
		if err != nil {
			return nil, fmt.Errorf("delivery: recipient: %w", err)
		}
		payload, err = hpke.Seal(pk, suiteKDF, suiteAEAD, info(&h), plain)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("delivery: seal: %w", err)
		}
	}
	if len(payload) > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrTooLarge, len(payload))
	}
	d := &Delivery{Header: h, Payload: payload}
	d.header = marshalHeader(&d.Header, len(payload))
	if len(d.header) > MaxHeaderBytes {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrTooLarge, len(d.header))
	}
	if d.Signature, err = sign(signer, signedMessage(d.header, payload)); err != nil {
		return nil, fmt.Errorf("delivery: sign: %w", err)
	}
	return d, nil
}

// Open returns the delivery's content. Verify must have succeeded first
// (ErrNotVerified otherwise). For a sealed delivery, key must be the private key
// whose ID is the header's Recipient (ErrWrongRecipient otherwise); the
// payload is opened with HPKE (ErrDecrypt) and decoded strictly
// (ErrMalformed). For a delivery in clear key is ignored and may be nil.
//
// Open checks the content's own rules (ErrInvalid) but not an application's
// certificate: call Application.Certificate for that.
func (d *Delivery) Open(key ecdh.KeyExchanger) (Content, error) {
	if !d.verified {
		return nil, ErrNotVerified
	}
	plain := d.Payload
	if d.Sealed() {
		if key == nil || key.Curve() != ecdh.P256() || KeyID(key.PublicKey()) != d.Recipient {
			return nil, fmt.Errorf("%w: sealed to key %s", ErrWrongRecipient, d.Recipient)
		}
		rk := &recordingKey{KeyExchanger: key}
		sk, err := hpke.NewDHKEMPrivateKey(rk)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWrongRecipient, err)
		}
		plain, err = hpke.Open(sk, suiteKDF, suiteAEAD, info(&d.Header), d.Payload)
		if err != nil {
			if rk.err != nil {
				// The key store failed, not the delivery.
				return nil, fmt.Errorf("%w: delivery %s: %w", ErrKeyUnavailable, d.ID, rk.err)
			}
			return nil, fmt.Errorf("%w: delivery %s", ErrDecrypt, d.ID)
		}
		defer clear(plain)
	}
	c, err := decodeContent(d.Header.Object().Kind, d.Kind == KindRevoke, plain)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		wipeContent(c)
		return nil, err
	}
	return c, nil
}

// wipeContent zeroes the key material of content that is being refused.
func wipeContent(c Content) {
	switch ct := c.(type) {
	case *Application:
		ct.PrivateKey.Wipe()
	case *GroupKey:
		ct.PrivateKey.Wipe()
	}
}

// Verified reports whether Verify has succeeded on d.
func (d *Delivery) Verified() bool { return d.verified }

// KeyID identifies a P-256 public key: the first 16 bytes of SHA-256 over
// its uncompressed SEC 1 encoding, in lowercase hex. It is the same as
// platform/keystore.KeyID, restated here because it is part of the format.
func KeyID(pub *ecdh.PublicKey) string {
	sum := sha256.Sum256(pub.Bytes())
	return hex.EncodeToString(sum[:16])
}

// recordingKey remembers an error of the key store's ECDH, which hpke.Open
// would otherwise report as a decryption failure: a TPM that does not answer
// must not make a good delivery look corrupt.
type recordingKey struct {
	ecdh.KeyExchanger
	err error
}

func (k *recordingKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	b, err := k.KeyExchanger.ECDH(peer)
	if err != nil {
		k.err = err
	}
	return b, err
}
