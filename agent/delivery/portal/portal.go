// Package portal is the portal's side of the delivery format: opening a
// .pfx/.p12, managing portal signing keys and group keys, finding a
// machine's key in its registration document, and dropping a delivery into
// an inbox atomically. credseal is a thin command over it; a real portal can
// import it or follow agent/delivery/SPEC.md.
package portal

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/platform/fsutil"
	"software.sslmate.com/src/go-pkcs12"
)

// MaxFileBytes bounds every key, .pfx and password file read here.
const MaxFileBytes = 1 << 20

// PFX is an opened .pfx/.p12.
type PFX struct {
	Application *delivery.Application
	Leaf        *x509.Certificate
	// Warnings are things a person should know (the certificate expires
	// soon) but that do not stop the delivery.
	Warnings []string
}

// OpenPFX decodes a PKCS#12 file (modern AES-256/PBKDF2 as OpenSSL 3 and
// recent Windows write it, or legacy 3DES/RC2), checks that the key is the
// certificate's and that the certificate is valid at now, and warns when it
// expires within warn. The chain is the leaf followed by the file's other
// certificates in issuer order where they link.
func OpenPFX(data []byte, password secret.Secret, now time.Time, warn time.Duration) (*PFX, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password.RevealString())
	if err != nil {
		return nil, pfxError(data, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("portal: .pfx private key %T is not a signing key", key)
	}
	if err := delivery.KeyMatches(leaf, signer); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("portal: private key: %w", err)
	}
	app := &delivery.Application{Chain: [][]byte{leaf.Raw}, PrivateKey: secret.New(p8)}
	// Order the CA certificates as a chain from the leaf, as far as they
	// link; the rest are dropped (a root is not needed by the server).
	cur, rest := leaf, cas
	for len(rest) > 0 {
		next := -1
		for i, c := range rest {
			if !bytes.Equal(c.Raw, cur.Raw) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 || isSelfSigned(rest[next]) {
			break
		}
		cur = rest[next]
		app.Chain = append(app.Chain, cur.Raw)
		rest = append(rest[:next:next], rest[next+1:]...)
	}
	p := &PFX{Application: app, Leaf: leaf}
	if last := certOf(app.Chain[len(app.Chain)-1]); last != nil && !isSelfSigned(last) && len(cas) > 0 && !issuedByOneOf(last, cas) {
		// The exporter included CA certificates, but the chain stops
		// short of a root: an intermediate is missing.
		p.Warnings = append(p.Warnings, fmt.Sprintf("the chain in the .pfx ends at %q, whose issuer %q is not in the file: "+
			"unless the CCP server has that intermediate itself, every resolution will fail with \"unknown certificate authority\"; "+
			"export the .pfx again with the whole chain (openssl pkcs12 -export ... -certfile chain.pem; Windows: include all certificates in the certification path)",
			last.Subject.CommonName, last.Issuer.CommonName))
	}
	if _, err := app.Certificate(now); err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	if left := leaf.NotAfter.Sub(now); left < warn {
		p.Warnings = append(p.Warnings, fmt.Sprintf("certificate %q expires in %d days (%s)", leaf.Subject.CommonName, int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return p, nil
}

func issuedByOneOf(c *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if !bytes.Equal(ca.Raw, c.Raw) && c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func certOf(der []byte) *x509.Certificate {
	c, _ := x509.ParseCertificate(der)
	return c
}

// pfxError says what is wrong with a file that does not open as PKCS#12,
// in words a person can act on, rather than the ASN.1 decoder's.
func pfxError(data []byte, err error) error {
	var (
		se asn1.StructuralError
		sy asn1.SyntaxError
	)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return fmt.Errorf("portal: opening the .pfx: wrong password (%w)", err)
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n\ufeff"), []byte("-----BEGIN")):
		return errors.New("portal: not a PKCS#12 file: it is PEM text; make a .pfx from the certificate and its key, " +
			"e.g. openssl pkcs12 -export -in app.crt -inkey app.key -certfile chain.pem -out app.pfx")
	case errors.As(err, &se), errors.As(err, &sy), strings.Contains(err.Error(), "asn1: "), strings.Contains(err.Error(), "trailing data"):
		return errors.New("portal: not a PKCS#12 file; is it PEM, or a certificate without its key? " +
			"(a .pfx / .p12 holds the certificate, its chain and the private key)")
	case strings.Contains(err.Error(), "no MAC in data"):
		return errors.New("portal: the .pfx has no integrity MAC (exported with -nomac), which a password-protected file needs: " +
			"export it again with a MAC (without -nomac)")
	}
	return fmt.Errorf("portal: opening the .pfx: %w", err)
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// ReadPassword reads a password: the first line of file, or of stdin when
// file is empty. A trailing CR LF or LF is removed.
func ReadPassword(file string, stdin io.Reader) (secret.Secret, error) {
	var r io.Reader = stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return secret.Secret{}, fmt.Errorf("portal: password file: %w", err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(io.LimitReader(r, 4096), 4096)
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return secret.Secret{}, fmt.Errorf("portal: reading the password: %w", err)
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	s := secret.New(append([]byte(nil), line...))
	clear(line)
	return s, nil
}

// GenerateSigningKey makes a portal signing key: alg is "ed25519" or
// "p256".
func GenerateSigningKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "p256", "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("portal: unknown signing algorithm %q (want ed25519 or p256)", alg)
}

// MarshalKeyPair returns a private key as a PEM "PRIVATE KEY" (PKCS#8) and
// its public key as a PEM "PUBLIC KEY" (PKIX), the form config.signing_keys
// pins. k is a signing key or an *ecdh.PrivateKey (a group key).
func MarshalKeyPair(k any) (priv, pub []byte, err error) {
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("portal: %w", err)
	}
	var pk any
	switch k := k.(type) {
	case crypto.Signer:
		pk = k.Public()
	case *ecdh.PrivateKey:
		pk = k.PublicKey()
	}
	spki, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return nil, nil, fmt.Errorf("portal: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), nil
}

func readPEM(path, want string) ([]byte, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != want {
		return nil, fmt.Errorf("portal: %s: not a PEM %q block", path, want)
	}
	return blk.Bytes, nil
}

// ReadFile reads a file the portal side is given (a .pfx, a key, a
// password, a CA bundle, a registration), refusing one larger than
// MaxFileBytes rather than reading it whole.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("portal: %s: %w", path, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("portal: %s: larger than %d bytes", path, MaxFileBytes)
	}
	return b, nil
}

// readPrivateKey reads a PEM "PRIVATE KEY" (PKCS#8) file, clearing the DER
// once parsed.
func readPrivateKey(path string) (any, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("portal: %s: %w", path, err)
	}
	return k, nil
}

// LoadSigningKey reads a portal signing key written by MarshalKeyPair.
func LoadSigningKey(path string) (crypto.Signer, error) {
	k, err := readPrivateKey(path)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("portal: %s: not a signing key", path)
	}
	if _, err := delivery.SignerID(s.Public()); err != nil {
		return nil, fmt.Errorf("portal: %s: %w", path, err)
	}
	return s, nil
}

// LoadGroupKey reads a group private key written by MarshalKeyPair.
func LoadGroupKey(path string) (*ecdh.PrivateKey, error) {
	k, err := readPrivateKey(path)
	if err != nil {
		return nil, err
	}
	var ek *ecdh.PrivateKey
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		ek, err = k.ECDH()
	case *ecdh.PrivateKey:
		ek = k
	}
	if err != nil || ek == nil || ek.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("portal: %s: not a P-256 group key", path)
	}
	return ek, nil
}

// LoadGroupPublicKey reads a group public key ("PUBLIC KEY" PEM).
func LoadGroupPublicKey(path string) (*ecdh.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("portal: %s: %w", path, err)
	}
	var pub *ecdh.PublicKey
	if ek, ok := k.(*ecdsa.PublicKey); ok {
		pub, err = ek.ECDH()
	}
	if err != nil || pub == nil || pub.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("portal: %s: not a P-256 public key", path)
	}
	return pub, nil
}

// LoadRegistration reads a machine's registration document and returns its
// machine ID and public key.
func LoadRegistration(path string) (enroll.Registration, *ecdh.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return enroll.Registration{}, nil, fmt.Errorf("portal: %w", err)
	}
	defer f.Close()
	return enroll.Parse(f)
}

// NewID returns a fresh delivery ID: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Write stores a marshalled delivery: into dir as "<id>.delivery" when dir
// is set, otherwise at file. Either way the data goes to a temporary dot
// file that is renamed into place, so an agent watching the directory never
// sees a partial file. It returns the path written.
func Write(d *delivery.Delivery, dir, file string) (string, error) {
	path := file
	if dir != "" {
		path = filepath.Join(dir, d.ID+".delivery")
	}
	if path == "" {
		return "", errors.New("portal: no inbox directory or output file")
	}
	if err := fsutil.WritePrivateFile(path, d.Marshal()); err != nil {
		return "", fmt.Errorf("portal: %w", err)
	}
	return path, nil
}

// WriteKeyPair writes priv to base+".key" (private, created exclusively:
// an existing key is never overwritten) and pub to base+".pub".
func WriteKeyPair(base string, priv, pub []byte) error {
	if err := fsutil.CreatePrivateFile(base+".key", priv); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	if err := os.WriteFile(base+".pub", pub, 0o644); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	return nil
}
