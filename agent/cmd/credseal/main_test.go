package main

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/keystore"
)

type fixture struct {
	dir        string
	machineKey *ecdh.PrivateKey
	reg        string
	signKey    string
	pinned     []crypto.PublicKey
	inbox      string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, inbox: filepath.Join(dir, "inbox")}
	if err := os.Mkdir(f.inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.machineKey, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	reg := enroll.New("machine-01", "host", "linux", "test", keystore.Info{Backend: "memory"}, f.machineKey.PublicKey(), time.Now())
	b, _ := reg.Marshal()
	f.reg = filepath.Join(dir, "registration.json")
	if err := os.WriteFile(f.reg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "portal")
	mustRun(t, nil, "keygen", "--alg", "p256", "--out", base)
	f.signKey = base + ".key"
	pubPEM, err := os.ReadFile(base + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := config.ParseSigningKey(string(pubPEM))
	if err != nil {
		t.Fatal(err)
	}
	f.pinned = []crypto.PublicKey{pub}
	return f
}

func mustRun(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, errOut, code := runCmd(stdin, args...)
	if code != 0 {
		t.Fatalf("credseal %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func runCmd(stdin []byte, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(args, bytes.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// check opens the only delivery in the inbox as the agent would.
func (f *fixture) check(t *testing.T, groupKey *ecdh.PrivateKey) *delivery.Accepted {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(f.inbox, "*"))
	if len(files) != 1 {
		t.Fatalf("inbox holds %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(files[0])
	c := &delivery.Checker{
		Signers: f.pinned, MachineID: "machine-01", Now: time.Now(),
		InGroup: func(g string) bool { return g == "robots" },
		MachineKey: func(id string) ecdh.KeyExchanger {
			if id == delivery.KeyID(f.machineKey.PublicKey()) {
				return f.machineKey
			}
			return nil
		},
		GroupKey: func(g, id string) ecdh.KeyExchanger {
			if groupKey != nil && id == delivery.KeyID(groupKey.PublicKey()) {
				return groupKey
			}
			return nil
		},
	}
	a, _, err := c.Check(b)
	if err != nil {
		t.Fatalf("agent refuses credseal's delivery: %v", err)
	}
	return a
}

func fingerprint(c *tls.Certificate) string {
	s := sha256.Sum256(c.Leaf.Raw)
	return hex.EncodeToString(s[:])
}

func TestAppFromP12(t *testing.T) {
	f := newFixture(t)
	var cases []p12case

	dev, err := fakeccp.EnsureDevPKI(filepath.Join(f.dir, "devpki"))
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, p12case{"dev app.p12", dev.AppP12File, fakeccp.DevP12Password, dev.App.Leaf.Raw})
	cases = append(cases, opensslP12s(t, f.dir)...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pw := filepath.Join(f.dir, "pw")
			os.WriteFile(pw, []byte(tc.password+"\n"), 0o600)
			for _, via := range []string{"file", "stdin"} {
				args := []string{"app", "--p12", tc.file, "--to", f.reg, "--sign", f.signKey, "--inbox", f.inbox, "--app-id", "DemoApp"}
				var stdin []byte
				if via == "file" {
					args = append(args, "--password-file", pw)
				} else {
					stdin = []byte(tc.password + "\r\n")
				}
				mustRun(t, stdin, args...)
				a := f.check(t, nil)
				if a.Target != "DemoApp" || !bytes.Equal(a.Certificate.Leaf.Raw, tc.leaf) {
					t.Fatalf("%s: wrong application %q %s", via, a.Target, fingerprint(a.Certificate))
				}
			}
			_, errOut, code := runCmd([]byte("wrong\n"), "app", "--p12", tc.file, "--to", f.reg, "--sign", f.signKey, "--inbox", f.inbox)
			if code == 0 || !strings.Contains(errOut, "password") {
				t.Fatalf("wrong password: exit %d %s", code, errOut)
			}
		})
	}
}

// opensslP12s makes .pfx files with the openssl command: OpenSSL 3's default
// (AES-256-CBC, PBKDF2) and -legacy (3DES and RC2-40), and one shaped like
// a Windows "TripleDES-SHA1" export: 3DES for both the certificates and the
// key, SHA-1 MAC (-legacy -descert). Windows' other export, "AES256-SHA256",
// uses the same PBES2 AES-256 and SHA-256 MAC as OpenSSL 3's default.
func opensslP12s(t *testing.T, dir string) []p12case {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" && runtime.GOOS != "windows" { // scripts/prereqs.sh installs it on Linux; under Windows it is a host tool
			t.Fatal("openssl not found (CI=true)")
		}
		t.Log("openssl not found: skipping OpenSSL-made .pfx files")
		return nil
	}
	sh := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	sh("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=OpenSSL test CA", "-days", "30")
	sh("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "app.key", "-out", "app.csr", "-subj", "/CN=OpenSSLApp")
	os.WriteFile(filepath.Join(dir, "ext.cnf"), []byte("extendedKeyUsage=clientAuth\n"), 0o644)
	sh("x509", "-req", "-in", "app.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "app.crt", "-days", "20", "-extfile", "ext.cnf")
	const pw = "S3cret pfx pass"
	pwFile := filepath.Join(dir, "p12pass")
	os.WriteFile(pwFile, []byte(pw), 0o600)
	sh("pkcs12", "-export", "-inkey", "app.key", "-in", "app.crt", "-certfile", "ca.crt", "-out", "aes.p12", "-passout", "file:p12pass")
	sh("pkcs12", "-export", "-legacy", "-inkey", "app.key", "-in", "app.crt", "-certfile", "ca.crt", "-out", "legacy.p12", "-passout", "file:p12pass")
	sh("pkcs12", "-export", "-legacy", "-descert", "-inkey", "app.key", "-in", "app.crt", "-certfile", "ca.crt", "-out", "windows-3des.p12", "-passout", "file:p12pass")
	crt, err := os.ReadFile(filepath.Join(dir, "app.crt"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tls.X509KeyPair(crt, mustRead(t, filepath.Join(dir, "app.key")))
	if err != nil {
		t.Fatal(err)
	}
	return []p12case{
		{"openssl AES-256", filepath.Join(dir, "aes.p12"), pw, leaf.Leaf.Raw},
		{"openssl legacy 3DES RC2", filepath.Join(dir, "legacy.p12"), pw, leaf.Leaf.Raw},
		{"Windows TripleDES-SHA1 shape", filepath.Join(dir, "windows-3des.p12"), pw, leaf.Leaf.Raw},
	}
}

type p12case struct {
	name, file, password string
	leaf                 []byte
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExpiryWarning(t *testing.T) {
	f := newFixture(t)
	cases := opensslP12s(t, f.dir)
	if len(cases) == 0 {
		t.Skip("no openssl")
	}
	_, errOut, code := runCmd([]byte(cases[0].password+"\n"), "app", "--p12", cases[0].file, "--to", f.reg, "--sign", f.signKey, "--out", filepath.Join(f.dir, "x.delivery"))
	if code != 0 || !strings.Contains(errOut, "warning: certificate \"OpenSSLApp\" expires in") {
		t.Fatalf("exit %d, stderr %q: want an expiry warning (20-day certificate)", code, errOut)
	}
}

func TestGroupAndOtherKinds(t *testing.T) {
	f := newFixture(t)
	gk := filepath.Join(f.dir, "robots.key")
	mustRun(t, nil, "group-key", "--new", "--key", gk, "--group", "robots", "--to", f.reg, "--sign", f.signKey, "--inbox", f.inbox, "--seq", "1")
	a := f.check(t, nil)
	if a.Kind != delivery.KindGroupKey || a.GroupPrivateKey == nil {
		t.Fatalf("group key delivery: %+v", a.Header)
	}
	group := a.GroupPrivateKey
	if _, errOut, code := runCmd(nil, "group-key", "--new", "--key", gk, "--group", "robots", "--to", f.reg, "--sign", f.signKey, "--inbox", f.inbox); code == 0 {
		t.Fatal("--new overwrote an existing group key")
	} else if !strings.Contains(errOut, "exists") {
		t.Fatalf("unexpected error %s", errOut)
	}

	dev, err := fakeccp.EnsureDevPKI(filepath.Join(f.dir, "devpki"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, []byte(fakeccp.DevP12Password), "app", "--p12", dev.AppP12File, "--group", "robots", "--group-key", filepath.Join(f.dir, "robots.pub"), "--sign", f.signKey, "--inbox", f.inbox)
	if a := f.check(t, group); a.To != delivery.Group("robots") || a.Certificate == nil {
		t.Fatalf("group app: %+v", a.Header)
	}

	mustRun(t, nil, "store", "--name", "prod", "--server", "https://ccp.example.com", "--server", "https://ccp2.example.com:8443", "--app-id", "DemoApp", "--safe", "RPA", "--ca-bundle", dev.CAFile, "--cache-ttl", "5m", "--to", f.reg, "--sign", f.signKey, "--inbox", f.inbox)
	if s := f.check(t, nil).Content.(*delivery.Store); len(s.Servers) != 2 || s.CABundle == "" || s.CacheTTLSeconds != 300 {
		t.Fatalf("store %+v", s)
	}
	mustRun(t, nil, "credential", "--name", "sap-bot", "--store", "prod", "--object", "sap-01", "--username-var", "u", "--group", "robots", "--sign", f.signKey, "--inbox", f.inbox, "--expires", "1h")
	if c := f.check(t, nil); c.Content.(*delivery.Credential).Object != "sap-01" || c.Expires.IsZero() {
		t.Fatalf("credential %+v", c.Header)
	}
	mustRun(t, nil, "revoke", "--kind", "application", "--name", "DemoApp", "--machine", "machine-01", "--sign", f.signKey, "--inbox", f.inbox)
	if r := f.check(t, nil); r.Object() != (delivery.Object{Kind: delivery.KindApplication, Name: "DemoApp"}) {
		t.Fatalf("revoke %+v", r.Header)
	}

	mustRun(t, nil, "credential", "--name", "sap-bot", "--owner", "team-a", "--store", "prod", "--object", "sap-01", "--group", "robots", "--sign", f.signKey, "--inbox", f.inbox)
	if c := f.check(t, nil); c.Object() != (delivery.Object{Kind: delivery.KindCredential, Owner: "team-a", Name: "sap-bot"}) {
		t.Fatalf("owned credential %+v", c.Header)
	}
	mustRun(t, []byte(fakeccp.DevP12Password), "app", "--p12", dev.AppP12File, "--owner", "team-a", "--group", "robots", "--group-key", filepath.Join(f.dir, "robots.pub"), "--sign", f.signKey, "--inbox", f.inbox)
	if a := f.check(t, group); a.Owner != "team-a" || a.Certificate == nil {
		t.Fatalf("owned group app: %+v", a.Header)
	}

	for _, bad := range [][]string{
		{"group-key", "--key", gk, "--group", "robots", "--owner", "team-a", "--to", f.reg, "--sign", f.signKey, "--inbox", f.inbox},
		{"credential", "--name", "x", "--owner", "team-a ", "--store", "s", "--object", "o", "--machine", "m", "--sign", f.signKey, "--inbox", f.inbox},
		{"store", "--name", "x", "--server", "http://plain", "--app-id", "a", "--machine", "m", "--sign", f.signKey, "--inbox", f.inbox},
		{"app", "--p12", dev.AppP12File, "--machine", "m", "--sign", f.signKey, "--inbox", f.inbox},
		{"revoke", "--kind", "bogus", "--name", "x", "--machine", "m", "--sign", f.signKey, "--inbox", f.inbox},
		{"credential", "--name", "x", "--store", "s", "--object", "o", "--machine", "m", "--sign", f.signKey},
		{"nope"},
	} {
		if _, _, code := runCmd([]byte(fakeccp.DevP12Password), bad...); code == 0 {
			t.Errorf("credseal %v succeeded", bad)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(f.inbox, "*")); len(files) != 0 {
		t.Fatalf("refused commands left files: %v", files)
	}
}

func TestPasswordNotInArgs(t *testing.T) {
	_, errOut, code := runCmd(nil, "app", "--password", "x")
	if code != 2 || !strings.Contains(errOut, "flag provided but not defined: -password") {
		t.Fatalf("a --password flag must not exist: %d %s", code, errOut)
	}
	var _ = portal.ReadPassword
}

// TestPFXMessages: files that are not what credseal app needs get words a
// person can act on, and a chain that stops at an intermediate the .pfx
// does not include is warned about when sealing (and not when complete).
func TestPFXMessages(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" && runtime.GOOS != "windows" { // scripts/prereqs.sh installs it on Linux; under Windows it is a host tool
			t.Fatal("openssl not found (CI=true)")
		}
		t.Skip("openssl not found")
	}
	f := newFixture(t)
	dir := f.dir
	sh := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "ca.cnf"), []byte("basicConstraints=critical,CA:true\nkeyUsage=keyCertSign,cRLSign\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "leaf.cnf"), []byte("extendedKeyUsage=clientAuth\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pass"), []byte("pw\n"), 0o600)
	sh("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "root.key", "-out", "root.crt", "-subj", "/CN=Test Root", "-days", "400")
	sh("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=Test Intermediate")
	sh("x509", "-req", "-in", "int.csr", "-CA", "root.crt", "-CAkey", "root.key", "-CAcreateserial", "-out", "int.crt", "-days", "400", "-extfile", "ca.cnf")
	sh("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=ChainApp")
	sh("x509", "-req", "-in", "leaf.csr", "-CA", "int.crt", "-CAkey", "int.key", "-CAcreateserial", "-out", "leaf.crt", "-days", "400", "-extfile", "leaf.cnf")
	sh("pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "root.crt", "-out", "gap.p12", "-passout", "file:pass")
	full, _ := os.ReadFile(filepath.Join(dir, "int.crt"))
	root, _ := os.ReadFile(filepath.Join(dir, "root.crt"))
	os.WriteFile(filepath.Join(dir, "chain.pem"), append(full, root...), 0o644)
	sh("pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "chain.pem", "-out", "full.p12", "-passout", "file:pass")
	sh("pkcs12", "-export", "-nomac", "-inkey", "leaf.key", "-in", "leaf.crt", "-out", "nomac.p12", "-passout", "file:pass")
	sh("x509", "-in", "leaf.crt", "-outform", "DER", "-out", "leaf.der")

	tests := []struct {
		name, file, want string
		ok               bool
	}{
		{"PEM", "leaf.crt", "not a PKCS#12 file: it is PEM text", false},
		{"DER certificate", "leaf.der", "not a PKCS#12 file; is it PEM", false},
		{"no MAC", "nomac.p12", "export it again with a MAC", false},
		{"intermediate missing", "gap.p12", `ends at "ChainApp", whose issuer "Test Intermediate" is not in the file`, true},
		{"whole chain", "full.p12", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCmd([]byte("pw\n"), "app", "--app-id", "ChainApp", "--p12", filepath.Join(dir, tt.file), "--to", f.reg, "--sign", f.signKey,
				"--out", filepath.Join(dir, tt.name+".delivery"))
			if (code == 0) != tt.ok {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if tt.want == "" && strings.Contains(errOut, "warning") {
				t.Fatalf("unexpected warning: %s", errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Fatalf("stderr %q does not say %q", errOut, tt.want)
			}
		})
	}
}
