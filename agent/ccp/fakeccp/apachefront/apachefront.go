// Package apachefront runs Debian's Apache httpd in front of the fake CCP,
// set up the way IIS hosts the real one: TLS terminated at the front, no
// client certificate asked for at the handshake, and the certificate
// required for the web-service location only, so that the front asks for it
// after reading the request line. With TLS 1.2 that is a renegotiation (what
// IIS does); on a TLS 1.3 connection it is post-handshake authentication,
// which Go clients do not offer, so the answer is a 403.
//
// Tests start one with Start; it runs as a child process (not a daemon) on
// a free 127.0.0.1 port and is stopped by t.Cleanup. The configuration is
// front.conf.tmpl, beside this file.
package apachefront

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

//go:embed front.conf.tmpl
var confTemplate string

// Binary is where Debian's apache2 package installs httpd.
const Binary = "/usr/sbin/apache2"

// modulesDir is where Debian's apache2 package installs its modules.
const modulesDir = "/usr/lib/apache2/modules"

// Mode is which TLS versions the front speaks.
type Mode int

const (
	// Renegotiate speaks TLS 1.2 only: the client certificate is asked
	// for by renegotiation, as IIS does.
	Renegotiate Mode = iota
	// PostHandshake speaks TLS 1.2 and 1.3, and asks for the client
	// certificate per location: on TLS 1.3, after the handshake.
	PostHandshake
)

func (m Mode) String() string {
	if m == PostHandshake {
		return "tls12+13"
	}
	return "tls12-renegotiate"
}

// Options configure a front.
type Options struct {
	Mode Mode
	// Backend is the fake CCP's base URL, https://127.0.0.1:PORT. Its
	// server certificate must chain to PKI's CA and name 127.0.0.1.
	Backend string
	// PKI is the dev PKI: the front serves its server certificate, trusts
	// its CA for clients and for the backend.
	PKI *fakeccp.DevPKI
	// Path is the location that requires a client certificate; default
	// fakeccp.DefaultPath.
	Path string
}

// Front is a running Apache front.
type Front struct {
	// URL is https://127.0.0.1:PORT.
	URL string
	// Dir holds the configuration and the logs.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
}

// Available reports whether Debian's apache2 is installed.
func Available() bool {
	_, err := os.Stat(filepath.Join(modulesDir, "mod_ssl.so"))
	return err == nil && isExecutable(Binary)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}

// Require skips the test when apache2 is not installed, or fails it when
// CI=true, where a missing prerequisite must not pass silently.
func Require(t testing.TB) {
	t.Helper()
	if Available() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("apache2 is not installed (CI=true); install it with scripts/prereqs.sh")
	}
	t.Skip("apache2 is not installed; skipping the Apache front tests (scripts/prereqs.sh installs it)")
}

// FrontIdentity mints the front's own client certificate towards the fake,
// from the dev CA, and returns the fakeccp.Front that trusts it together
// with the PEM file (certificate then key) Apache presents.
func FrontIdentity(pki *fakeccp.DevPKI, dir string) (*fakeccp.Front, string, error) {
	c, err := pki.MintClientCert(fakeccp.ClientCertOptions{CommonName: "credagent test front",
		NotAfter: time.Now().Add(7 * 24 * time.Hour)})
	if err != nil {
		return nil, "", err
	}
	certPEM, keyPEM, err := fakeccp.EncodePEM(c)
	if err != nil {
		return nil, "", err
	}
	f := filepath.Join(dir, "front-client.pem")
	if err := os.WriteFile(f, append(certPEM, keyPEM...), 0o600); err != nil {
		return nil, "", err
	}
	return &fakeccp.Front{Certificate: c.Leaf}, f, nil
}

// StartWithFake starts a fake CCP that trusts a front, and the front before
// it. mutate may adjust the fake's options (its Front is set here).
func StartWithFake(t testing.TB, mode Mode, pki *fakeccp.DevPKI, fix *fakeccp.Fixture, mutate func(*fakeccp.Options)) (*Front, *fakeccp.Server) {
	t.Helper()
	Require(t)
	dir := shortTempDir(t)
	front, proxyCert, err := FrontIdentity(pki, dir)
	if err != nil {
		t.Fatal(err)
	}
	o := pki.ServerOptions()
	o.AdminAddr = "off"
	if mutate != nil {
		mutate(&o)
	}
	o.Front = front
	srv, err := fakeccp.New(fix, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f, err := start(dir, proxyCert, Options{Mode: mode, Backend: srv.URL, PKI: pki, Path: srv.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f, srv
}

// shortTempDir is a directory of the test's that Apache's workers can
// read even after dropping root; t.TempDir's parents are private.
func shortTempDir(t testing.TB) string {
	d, err := os.MkdirTemp("", "apachefront")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Config is what front.conf.tmpl names, with paths as httpd sees them.
type Config struct {
	Dir       string // configuration, logs, pid file; writable by httpd
	Modules   string // default Debian's module directory
	User      string // set only when httpd starts as root
	Group     string
	LogLevel  string // default "warn ssl:info"
	Addr      string // listen address, default 127.0.0.1
	Port      int
	Protocols string // SSLProtocol; ProtocolsFor
	// ServerCert and ServerKey are the front's TLS certificate; ClientCA
	// verifies clients; BackendCA verifies the fake; ProxyCert is the
	// front's own certificate and key towards the fake (FrontIdentity).
	ServerCert, ServerKey, ClientCA, BackendCA, ProxyCert string
	Backend                                               string // the fake's base URL
	Path                                                  string // the location requiring a client certificate
}

// ProtocolsFor is the SSLProtocol line of a mode.
func ProtocolsFor(m Mode) string {
	if m == PostHandshake {
		return "-all +TLSv1.2 +TLSv1.3"
	}
	return "-all +TLSv1.2"
}

// Render renders the front's configuration (e2e runs it in a container).
func Render(c Config) ([]byte, error) {
	if c.Modules == "" {
		c.Modules = modulesDir
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn ssl:info"
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1"
	}
	if c.Path == "" {
		c.Path = fakeccp.DefaultPath
	}
	c.Backend = strings.TrimRight(c.Backend, "/")
	tmpl, err := template.New("front.conf").Parse(confTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// start renders the configuration into dir and starts httpd in the
// foreground. A port another process took in the meantime is retried.
func start(dir, proxyCert string, o Options) (*Front, error) {
	d := Config{
		Dir:        dir,
		ServerCert: o.PKI.ServerCertFile, ServerKey: o.PKI.ServerKeyFile,
		ClientCA: o.PKI.CAFile, BackendCA: o.PKI.CAFile,
		ProxyCert: proxyCert, Backend: o.Backend, Path: o.Path,
		Protocols: ProtocolsFor(o.Mode),
	}
	if os.Geteuid() == 0 {
		// httpd refuses to serve as root; its workers take this user.
		// Keys and certificates are read by the parent, still root.
		d.User, d.Group = "nobody", "nogroup"
		if _, err := user.Lookup("www-data"); err == nil {
			d.User, d.Group = "www-data", "www-data"
		}
	}
	var lastErr error
	for range 5 {
		var err error
		if d.Port, err = freePort(); err != nil {
			return nil, err
		}
		b, err := Render(d)
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "front.conf")
		if err := os.WriteFile(conf, b, 0o644); err != nil {
			return nil, err
		}
		f := &Front{URL: "https://127.0.0.1:" + strconv.Itoa(d.Port), Dir: dir}
		if lastErr = f.run(conf, d.Port); lastErr == nil {
			return f, nil
		}
	}
	return nil, lastErr
}

func (f *Front) run(conf string, port int) error {
	f.cmd = exec.Command(Binary, "-f", conf, "-DFOREGROUND")
	f.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	var out bytes.Buffer
	f.cmd.Stdout, f.cmd.Stderr = &out, &out
	// Its own process group: Stop signals httpd and its workers only.
	setProcessGroup(f.cmd)
	if err := f.cmd.Start(); err != nil {
		return fmt.Errorf("apachefront: starting %s: %w", Binary, err)
	}
	f.done = make(chan struct{})
	go func() { f.cmd.Wait(); close(f.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-f.done:
			log, _ := os.ReadFile(filepath.Join(f.Dir, "error.log"))
			return fmt.Errorf("apachefront: httpd exited at start: %s%s", out.String(), log)
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.Stop()
	return errors.New("apachefront: httpd did not listen within 10s")
}

// Stop stops httpd (SIGTERM to its process group, SIGKILL after 5s). It is
// idempotent.
func (f *Front) Stop() {
	if f.cmd == nil || f.cmd.Process == nil {
		return
	}
	pid := f.cmd.Process.Pid
	select {
	case <-f.done:
	default:
		terminate(pid)
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
			killGroup(pid)
			<-f.done
		}
	}
	f.cmd = nil
}

// ErrorLog returns httpd's error log, for a failing test to show.
func (f *Front) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "error.log"))
	return string(b)
}

// AccessLog returns httpd's access log: one line per request with the
// TLS protocol and the client certificate's serial.
func (f *Front) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "access.log"))
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
