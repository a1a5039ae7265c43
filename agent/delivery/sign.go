package delivery

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// signatureContext is the domain-separation prefix of every signed message.
const signatureContext = "credagent delivery signature v1\x00"

var b64 = base64.StdEncoding.Strict()

// decodeB64 accepts only canonical, padded standard base64.
func decodeB64(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if b64.EncodeToString(b) != s {
		return nil, fmt.Errorf("not canonical base64")
	}
	return b, nil
}

// SignerID identifies a portal signing key: the first 16 bytes of SHA-256
// over its PKIX SubjectPublicKeyInfo DER, in lowercase hex. pub must be an
// ECDSA P-256 or Ed25519 public key.
func SignerID(pub crypto.PublicKey) (string, error) {
	if err := checkSigningKey(pub); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("delivery: signing key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:16]), nil
}

func checkSigningKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
	}
	return fmt.Errorf("delivery: signing key %T is not ECDSA P-256 or Ed25519", pub)
}

// signedMessage is what the signature covers: the context string, the exact
// header bytes, and the SHA-256 of the payload.
func signedMessage(header, payload []byte) []byte {
	sum := sha256.Sum256(payload)
	m := make([]byte, 0, len(signatureContext)+len(header)+len(sum))
	m = append(m, signatureContext...)
	m = append(m, header...)
	return append(m, sum[:]...)
}

// sign signs m with an Ed25519 (pure) or ECDSA P-256 (SHA-256, ASN.1 DER)
// key.
func sign(s crypto.Signer, m []byte) ([]byte, error) {
	switch s.Public().(type) {
	case ed25519.PublicKey:
		return s.Sign(rand.Reader, m, crypto.Hash(0))
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(m)
		return s.Sign(rand.Reader, sum[:], crypto.SHA256)
	}
	return nil, fmt.Errorf("delivery: signing key %T is not ECDSA P-256 or Ed25519", s.Public())
}

// Verify checks the signature against the pinned portal keys. It must
// succeed before Open will decrypt anything. It fails with ErrUnknownSigner
// if no pinned key has the header's signer ID, and with ErrBadSignature if
// the signature does not verify under that key.
func (d *Delivery) Verify(pinned []crypto.PublicKey) error {
	d.verified = false
	header := d.header
	if header == nil { // built in memory, not parsed
		header = marshalHeader(&d.Header, len(d.Payload))
	}
	if err := verifySignature(pinned, d.Signer, signedMessage(header, d.Payload), d.Signature); err != nil {
		return fmt.Errorf("delivery %s: %w", d.ID, err)
	}
	d.verified = true
	return nil
}

// verifySignature checks sig over m by the pinned key whose signer ID is
// signer.
func verifySignature(pinned []crypto.PublicKey, signer string, m, sig []byte) error {
	for _, pub := range pinned {
		id, err := SignerID(pub)
		if err != nil || id != signer {
			continue
		}
		ok := false
		switch k := pub.(type) {
		case ed25519.PublicKey:
			ok = ed25519.Verify(k, m, sig)
		case *ecdsa.PublicKey:
			sum := sha256.Sum256(m)
			ok = ecdsa.VerifyASN1(k, sum[:], sig)
		}
		if !ok {
			return fmt.Errorf("%w under key %s", ErrBadSignature, signer)
		}
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnknownSigner, signer)
}
