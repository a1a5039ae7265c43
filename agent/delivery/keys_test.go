package delivery

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery/deliverytest"
	"github.com/credagent/credagent/agent/secret"
)

// Deterministic test keys: each private scalar or seed is SHA-256 of a fixed
// string, as SPEC.md ("Test vectors") states, so another implementation can
// rebuild them.
var (
	seed     = deliverytest.Seed
	ecdhKey  = deliverytest.ECDHKey
	ecdsaKey = deliverytest.ECDSAKey
)

var (
	machineKey   = ecdhKey("credagent test machine key")
	otherKey     = ecdhKey("credagent test other machine key")
	groupKey     = ecdhKey("credagent test group key")
	edSigner     = ed25519.NewKeyFromSeed(seed("credagent test ed25519 signing key"))
	ecSigner     = ecdsaKey("credagent test ecdsa signing key")
	rogueSigner  = ed25519.NewKeyFromSeed(seed("credagent test unpinned signing key"))
	caKey        = ecdsaKey("credagent test ca key")
	appKey       = ecdsaKey("credagent test application key")
	otherAppKey  = ecdsaKey("credagent test other application key")
	pinned       = []crypto.PublicKey{edSigner.Public(), ecSigner.Public()}
	vectorNow    = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	vectorCreate = time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
)

const (
	testMachine = "machine-01"
	testGroup   = "rpa-robots"
)

// testCert makes a certificate for pub signed by (parent, parentKey); with a
// nil parent it is self-signed by parentKey.
func testCert(t testing.TB, cn string, serial int64, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, isCA bool, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             nb,
		NotAfter:              na,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(zeroReader{}, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// zeroReader makes ECDSA certificate signatures reproducible enough for
// tests; crypto/ecdsa mixes it with the key, so signatures stay valid.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type appFixture struct {
	ca, leaf *x509.Certificate
	app      *Application
}

func makeApp(t testing.TB, key *ecdsa.PrivateKey, nb, na time.Time) appFixture {
	t.Helper()
	ca := testCert(t, "credagent test CA", 1, caKey.Public(), nil, caKey, true, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC))
	leaf := testCert(t, "app-sap", 2, appKey.Public(), ca, caKey, false, nb, na)
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return appFixture{ca, leaf, &Application{Chain: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: secret.New(p8)}}
}

func goodApp(t testing.TB) appFixture {
	return makeApp(t, appKey, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
}

func testChecker() *Checker {
	return &Checker{
		Signers:   pinned,
		MachineID: testMachine,
		InGroup:   func(g string) bool { return g == testGroup },
		MachineKey: func(id string) ecdh.KeyExchanger {
			if id == KeyID(machineKey.PublicKey()) {
				return machineKey
			}
			return nil
		},
		GroupKey: func(g, id string) ecdh.KeyExchanger {
			if g == testGroup && id == KeyID(groupKey.PublicKey()) {
				return groupKey
			}
			return nil
		},
		Now: vectorNow,
	}
}

func secretOf(b []byte) secret.Secret { return secret.New(append([]byte(nil), b...)) }
