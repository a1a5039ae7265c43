package fakeccp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"text/template"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/credagent/credagent/platform/fsutil"
)

// DevP12Password is the password of the dev app.p12.
const DevP12Password = "changeit"

// The file names EnsureDevPKI uses in its directory.
const (
	DevCAFile         = "ca.pem"
	DevCAKeyFile      = "ca.key"
	DevServerCertFile = "server.crt"
	DevServerKeyFile  = "server.key"
	DevAppCertFile    = "app.crt"
	DevAppKeyFile     = "app.key"
	DevAppP12File     = "app.p12"
	DevFixtureFile    = "fixture.yaml"
)

//go:embed dev_fixture.yaml.tmpl
var devFixtureTemplate string

// DevPKI is a development CA with a server certificate and the DemoApp
// client certificate, and the dev fixture that registers it.
type DevPKI struct {
	Dir string
	// Paths of the files in Dir.
	CAFile, CAKeyFile, ServerCertFile, ServerKeyFile string
	AppCertFile, AppKeyFile, AppP12File, FixtureFile string

	CA     *x509.Certificate
	CAKey  crypto.Signer
	CAPool *x509.CertPool
	// Server is the server certificate (Leaf set), valid for localhost,
	// 127.0.0.1, ::1 and the extra hosts given to EnsureDevPKI.
	Server tls.Certificate
	// App is the DemoApp client certificate (Leaf set).
	App tls.Certificate
	// AppSerial is App's serial as CCP writes it: lower-case hex.
	AppSerial string
}

// devPKIMu serializes EnsureDevPKI within a process. Separate processes
// must not share a directory while one of them is creating it.
var devPKIMu sync.Mutex

// EnsureDevPKI creates in dir, or reuses from it, everything `fakeccp dev`
// serves with:
//
//   - ca.pem, ca.key: a P-256 ECDSA CA, valid ten years;
//   - server.crt, server.key: for localhost, 127.0.0.1, ::1 and extraHosts
//     (DNS names or IP addresses);
//   - app.crt, app.key, app.p12 (password DevP12Password): the DemoApp
//     client certificate;
//   - fixture.yaml: the dev fixture, DemoApp registered with app.crt's
//     serial.
//
// Files that exist, parse, chain to the CA and are valid for another day
// are kept; others are made again (a new CA makes everything new).
// fixture.yaml is written when missing or when app.crt is new, so local
// edits survive. Every file is written atomically; keys and app.p12 as
// private files (platform/fsutil).
func EnsureDevPKI(dir string, extraHosts ...string) (*DevPKI, error) {
	devPKIMu.Lock()
	defer devPKIMu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fakeccp: dev PKI: %w", err)
	}
	p := &DevPKI{
		Dir:            dir,
		CAFile:         filepath.Join(dir, DevCAFile),
		CAKeyFile:      filepath.Join(dir, DevCAKeyFile),
		ServerCertFile: filepath.Join(dir, DevServerCertFile),
		ServerKeyFile:  filepath.Join(dir, DevServerKeyFile),
		AppCertFile:    filepath.Join(dir, DevAppCertFile),
		AppKeyFile:     filepath.Join(dir, DevAppKeyFile),
		AppP12File:     filepath.Join(dir, DevAppP12File),
		FixtureFile:    filepath.Join(dir, DevFixtureFile),
	}
	soon := time.Now().Add(24 * time.Hour)

	// The CA.
	newCA := false
	caPair, err := tls.LoadX509KeyPair(p.CAFile, p.CAKeyFile)
	if err == nil && caPair.Leaf.IsCA && caPair.Leaf.NotAfter.After(soon) {
		p.CA, p.CAKey = caPair.Leaf, caPair.PrivateKey.(crypto.Signer)
	} else {
		newCA = true
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("fakeccp: dev PKI: %w", err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          randomSerial(),
			Subject:               pkix.Name{CommonName: "credagent fakeccp dev CA", Organization: []string{"credagent dev"}},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().AddDate(10, 0, 0),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, fmt.Errorf("fakeccp: dev PKI: %w", err)
		}
		p.CA, _ = x509.ParseCertificate(der)
		p.CAKey = key
		if err := writePEMFiles(p.CAFile, p.CAKeyFile, der, key); err != nil {
			return nil, err
		}
	}
	p.CAPool = x509.NewCertPool()
	p.CAPool.AddCert(p.CA)

	// The server certificate.
	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, extraHosts...)
	srv, err := p.loadLeaf(p.ServerCertFile, p.ServerKeyFile, x509.ExtKeyUsageServerAuth, soon)
	if newCA || err != nil || !coversHosts(srv.Leaf, hosts) {
		var dns []string
		var ips []net.IP
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				ips = append(ips, ip)
			} else if h != "" {
				dns = append(dns, h)
			}
		}
		srv, err = p.mint(&x509.Certificate{
			Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"credagent dev"}},
			NotAfter:    time.Now().AddDate(2, 0, 0),
			DNSNames:    dns,
			IPAddresses: ips,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return nil, err
		}
		if err := writePEMFiles(p.ServerCertFile, p.ServerKeyFile, srv.Certificate[0], srv.PrivateKey); err != nil {
			return nil, err
		}
	}
	p.Server = srv

	// The DemoApp certificate.
	newApp := false
	appCert, err := p.loadLeaf(p.AppCertFile, p.AppKeyFile, x509.ExtKeyUsageClientAuth, soon)
	if newCA || err != nil {
		newApp = true
		appCert, err = p.MintClientCert(ClientCertOptions{CommonName: "DemoApp", NotAfter: time.Now().AddDate(2, 0, 0)})
		if err != nil {
			return nil, err
		}
		if err := writePEMFiles(p.AppCertFile, p.AppKeyFile, appCert.Certificate[0], appCert.PrivateKey); err != nil {
			return nil, err
		}
	}
	p.App = appCert
	p.AppSerial = appCert.Leaf.SerialNumber.Text(16)
	if _, err := os.Stat(p.AppP12File); newApp || err != nil {
		pfx, err := EncodeP12(appCert, []*x509.Certificate{p.CA}, DevP12Password)
		if err != nil {
			return nil, err
		}
		if err := fsutil.WritePrivateFile(p.AppP12File, pfx); err != nil {
			return nil, fmt.Errorf("fakeccp: %w", err)
		}
	}

	// The fixture.
	if _, err := os.Stat(p.FixtureFile); newApp || err != nil {
		data, err := RenderDevFixture(p.AppSerial)
		if err != nil {
			return nil, err
		}
		if err := writePublicFile(p.FixtureFile, data); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// RenderDevFixture returns the dev fixture with DemoApp registered for the
// certificate serial appSerial (hex).
func RenderDevFixture(appSerial string) ([]byte, error) {
	n, ok := normalizeSerial(appSerial)
	if !ok {
		return nil, fmt.Errorf("fakeccp: dev fixture: serial %q is not hexadecimal", appSerial)
	}
	t, err := template.New(DevFixtureFile).Parse(devFixtureTemplate)
	if err != nil {
		return nil, fmt.Errorf("fakeccp: dev fixture: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ AppSerial string }{n}); err != nil {
		return nil, fmt.Errorf("fakeccp: dev fixture: %w", err)
	}
	return b.Bytes(), nil
}

// Fixture loads the dev fixture.
func (p *DevPKI) Fixture() (*Fixture, error) { return LoadFixture(p.FixtureFile) }

// ServerOptions are Options serving the dev server certificate and
// requiring client certificates from the dev CA at the handshake.
func (p *DevPKI) ServerOptions() Options {
	c := p.Server
	return Options{Certificate: &c, ClientCAs: p.CAPool, ClientAuth: ClientAuthRequire}
}

// ClientTLSConfig is a client configuration presenting the DemoApp
// certificate and trusting the dev CA, HTTP/1.1 only.
func (p *DevPKI) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.App},
		RootCAs:      p.CAPool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// ClientCertOptions describe a client certificate for MintClientCert. Zero
// fields take the defaults given.
type ClientCertOptions struct {
	CommonName   string   // default "credagent test client"
	Organization []string // default ["credagent dev"]
	// Serial defaults to a random positive 128-bit number.
	Serial *big.Int
	// NotBefore defaults to an hour ago, NotAfter to a day from now. Set
	// both in the past for an expired certificate.
	NotBefore, NotAfter time.Time
	DNSNames            []string
	IPAddresses         []net.IP
	EmailAddresses      []string
	URIs                []*url.URL
	// ExtKeyUsage defaults to client authentication.
	ExtKeyUsage []x509.ExtKeyUsage
}

// MintClientCert issues a client certificate from the dev CA, with a new
// P-256 key. The result has Leaf set. Nothing is written to disk.
func (p *DevPKI) MintClientCert(o ClientCertOptions) (tls.Certificate, error) {
	if o.CommonName == "" {
		o.CommonName = "credagent test client"
	}
	if o.Organization == nil {
		o.Organization = []string{"credagent dev"}
	}
	if o.ExtKeyUsage == nil {
		o.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return p.mint(&x509.Certificate{
		SerialNumber:   o.Serial,
		Subject:        pkix.Name{CommonName: o.CommonName, Organization: o.Organization},
		NotBefore:      o.NotBefore,
		NotAfter:       o.NotAfter,
		DNSNames:       o.DNSNames,
		IPAddresses:    o.IPAddresses,
		EmailAddresses: o.EmailAddresses,
		URIs:           o.URIs,
		ExtKeyUsage:    o.ExtKeyUsage,
	})
}

func (p *DevPKI) mint(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fakeccp: mint certificate: %w", err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = randomSerial()
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, key.Public(), p.CAKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fakeccp: mint certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("fakeccp: mint certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// loadLeaf loads a key pair that chains to the CA for usage and stays
// valid past soon.
func (p *DevPKI) loadLeaf(certFile, keyFile string, usage x509.ExtKeyUsage, soon time.Time) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return c, err
	}
	if c.Leaf.NotAfter.Before(soon) {
		return c, errors.New("expires soon")
	}
	_, err = c.Leaf.Verify(x509.VerifyOptions{Roots: p.CAPool, KeyUsages: []x509.ExtKeyUsage{usage}})
	return c, err
}

func coversHosts(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

// EncodePEM returns a certificate chain and its private key as PEM
// ("CERTIFICATE" blocks and a "PRIVATE KEY" PKCS #8 block).
func EncodePEM(c tls.Certificate) (certPEM, keyPEM []byte, err error) {
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("fakeccp: encode key: %w", err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), nil
}

// EncodeP12 returns c and its key as PKCS #12 (AES-256, PBKDF2: go-pkcs12's
// Modern encoder), with caCerts included.
func EncodeP12(c tls.Certificate, caCerts []*x509.Certificate, password string) ([]byte, error) {
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("fakeccp: encode p12: %w", err)
		}
	}
	pfx, err := pkcs12.Modern.Encode(c.PrivateKey, leaf, caCerts, password)
	if err != nil {
		return nil, fmt.Errorf("fakeccp: encode p12: %w", err)
	}
	return pfx, nil
}

func writePEMFiles(certFile, keyFile string, der []byte, key crypto.PrivateKey) error {
	certPEM, keyPEM, err := EncodePEM(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key})
	if err != nil {
		return err
	}
	if err := fsutil.WritePrivateFile(keyFile, keyPEM); err != nil {
		return fmt.Errorf("fakeccp: %w", err)
	}
	return writePublicFile(certFile, certPEM)
}

// writePublicFile writes a file anyone may read (a certificate, the
// fixture) through a temporary file in the same directory and a rename, so
// readers never see half a file. Keys go through fsutil.WritePrivateFile.
func writePublicFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("fakeccp: write %s: %w", path, err)
	}
	tmp := f.Name()
	// On Windows mode bits mean little; the directory's ACL applies.
	if err := f.Chmod(0o644); err != nil && runtime.GOOS != "windows" {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("fakeccp: write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp)
		return fmt.Errorf("fakeccp: write %s: %w", path, errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fakeccp: write %s: %w", path, err)
	}
	return nil
}
