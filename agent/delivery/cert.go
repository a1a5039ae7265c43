package delivery

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Certificate parses the application's chain and key and checks them: the
// key is the leaf's (ErrKeyMismatch); every certificate is valid at now
// (ErrCertExpired); each certificate is signed by the next one and the leaf
// may be used for client authentication (ErrBadChain). It does not check
// the chain against any root: the CCP server decides which issuers it
// trusts. The returned certificate has Leaf set and a crypto.Signer as
// PrivateKey. On failure a.PrivateKey is wiped: a refused application's key
// is not kept in memory.
func (a *Application) Certificate(now time.Time) (cert *tls.Certificate, err error) {
	defer func() {
		if err != nil {
			a.PrivateKey.Wipe()
		}
	}()
	if err := a.validate(); err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(a.Chain))
	for i, der := range a.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, malformed("certificate %d: %v", i, err)
		}
		certs[i] = c
	}
	key, err := x509.ParsePKCS8PrivateKey(a.PrivateKey.Reveal())
	if err != nil {
		return nil, malformed("private key is not PKCS#8")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported private key type %T", ErrInvalid, key)
	}
	if err := KeyMatches(certs[0], signer); err != nil {
		return nil, err
	}
	for i, c := range certs {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: certificate %d (%s) valid %s to %s", ErrCertExpired, i, c.Subject, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		}
		if i+1 < len(certs) {
			if err := c.CheckSignatureFrom(certs[i+1]); err != nil {
				return nil, fmt.Errorf("%w: certificate %d is not signed by certificate %d: %v", ErrBadChain, i, i+1, err)
			}
		}
	}
	if eku := certs[0].ExtKeyUsage; len(eku) > 0 {
		ok := false
		for _, u := range eku {
			ok = ok || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
		}
		if !ok {
			return nil, fmt.Errorf("%w: the leaf certificate is not for client authentication", ErrBadChain)
		}
	}
	return &tls.Certificate{Certificate: a.Chain, PrivateKey: signer, Leaf: certs[0]}, nil
}

// KeyMatches fails with ErrKeyMismatch unless key is the private half of
// cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("%w: certificate %s", ErrKeyMismatch, cert.Subject)
	}
	return nil
}

func checkPEMCerts(b []byte) error {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q is not a CERTIFICATE", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}
