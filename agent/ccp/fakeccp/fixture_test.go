package fakeccp_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"software.sslmate.com/src/go-pkcs12"
)

func TestFixtureErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "file:line: ..." prefix and a fragment
	}{
		{"unknown key", "applications:\n  - appID: A\n    authentcation: {}\n", "f.yaml:3: field authentcation not found"},
		{"syntax", "safes:\n  - name: [unclosed\n", "f.yaml:"},
		{"wrong type", "safes:\n  - name: S\n    accounts: 5\n", "f.yaml:3:"},
		{"bad CIDR", "applications:\n  - appID: A\n    authentication:\n      allowedMachines: [\"10.0.0.0/33\"]\n", "f.yaml:4: allowed machine"},
		{"host name machine", "applications:\n  - appID: A\n    authentication:\n      allowedMachines:\n        - host.example\n", "f.yaml:5: allowed machine \"host.example\""},
		{"bad serial", "applications:\n  - appID: A\n    authentication:\n      certificateSerialNumbers: [xyz]\n", "f.yaml:4: certificate serial number"},
		{"unknown safe", "applications:\n  - appID: A\n    safes:\n      - name: Nope\n", "f.yaml:4: application \"A\" is a member of safe \"Nope\""},
		{"unknown permission", "safes: [{name: S}]\napplications:\n  - appID: A\n    safes:\n      - name: S\n        permissions: [Retrieve, Steal]\n", "f.yaml:6: unknown permission \"Steal\""},
		{"duplicate account", "safes:\n  - name: S\n    accounts:\n      - {name: a, password: x}\n      - {name: a, password: y}\n", "f.yaml:5: account \"a\" is defined twice"},
		{"duplicate app", "applications:\n  - appID: A\n  - appID: a\n", "f.yaml:3: application \"a\" is defined twice"},
		{"reserved property", "safes:\n  - name: S\n    accounts:\n      - name: a\n        properties:\n          Content: x\n", "f.yaml:6: property \"Content\""},
		{"bad folder", "safes:\n  - name: S\n    accounts:\n      - {name: a, folder: Secrets}\n", "f.yaml:4: folder \"Secrets\""},
		{"forbidden char in name", "safes:\n  - name: S\n    accounts:\n      - {name: a+b}\n", "f.yaml:4: account name"},
		{"bad setting", "settings:\n  propertyCase: sometimes\n", "f.yaml:2: propertyCase"},
		{"bad fault rate", "faults:\n  resetRate: 3\n", "f.yaml:2: resetRate"},
		{"bad duration", "faults:\n  latency: soon\n", "f.yaml:2:"},
		{"two documents", "safes: []\n---\nsafes: []\n", "f.yaml:2: more than one YAML document"},
		{"bad SAN", "applications:\n  - appID: A\n    authentication:\n      certificateAttributes:\n        subjectAlternativeName: [\"X400:foo\"]\n", "f.yaml:5: subject alternative name"},
		{"bad DN", "applications:\n  - appID: A\n    authentication:\n      certificateAttributes:\n        subject: [\"Bogus=1\"]\n", "f.yaml:5: subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fakeccp.ParseFixture("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			var fe *fakeccp.FixtureError
			var fes fakeccp.FixtureErrors
			if !errors.As(err, &fe) && !errors.As(err, &fes) {
				t.Errorf("error is %T", err)
			}
		})
	}
	if _, err := fakeccp.ParseFixture("ok.json", []byte(`{"safes":[{"name":"S","accounts":[{"name":"a","password":"p"}]}]}`)); err != nil {
		t.Errorf("JSON fixture: %v", err)
	}
	if _, err := fakeccp.LoadFixture(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestEnsureDevPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := fakeccp.EnsureDevPKI(dir, "fakeccp")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.CAFile, p.CAKeyFile, p.ServerCertFile, p.ServerKeyFile, p.AppCertFile, p.AppKeyFile, p.AppP12File, p.FixtureFile} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".key") || strings.HasSuffix(f, ".p12") {
			if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v", f, st.Mode().Perm())
			}
		}
	}
	if err := p.Server.Leaf.VerifyHostname("fakeccp"); err != nil {
		t.Error(err)
	}
	if err := p.Server.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if _, err := p.App.Leaf.Verify(x509.VerifyOptions{Roots: p.CAPool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
	data, _ := os.ReadFile(p.AppP12File)
	key, cert, _, err := pkcs12.DecodeChain(data, fakeccp.DevP12Password)
	if err != nil || key == nil || !cert.Equal(p.App.Leaf) {
		t.Errorf("app.p12: %v", err)
	}
	fix, err := p.Fixture()
	if err != nil {
		t.Fatal(err)
	}
	if len(fix.Applications) == 0 || fix.Applications[0].Authentication.CertificateSerialNumbers[0] != p.AppSerial {
		t.Errorf("fixture does not register %s", p.AppSerial)
	}

	// Reuse: the same files, the same serial.
	os.WriteFile(p.FixtureFile, append(mustRead(t, p.FixtureFile), "# edited\n"...), 0o644)
	q, err := fakeccp.EnsureDevPKI(dir, "fakeccp")
	if err != nil {
		t.Fatal(err)
	}
	if q.AppSerial != p.AppSerial || !q.CA.Equal(p.CA) || !q.Server.Leaf.Equal(p.Server.Leaf) {
		t.Error("EnsureDevPKI did not reuse the files")
	}
	if !strings.HasSuffix(string(mustRead(t, p.FixtureFile)), "# edited\n") {
		t.Error("fixture edits were lost")
	}
	// A new host reissues only the server certificate.
	r, err := fakeccp.EnsureDevPKI(dir, "other.example")
	if err != nil {
		t.Fatal(err)
	}
	if r.Server.Leaf.Equal(p.Server.Leaf) || r.AppSerial != p.AppSerial {
		t.Error("a new host should reissue the server certificate only")
	}
	// A lost app key makes a new app cert and a new fixture.
	os.Remove(p.AppKeyFile)
	s, err := fakeccp.EnsureDevPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.AppSerial == p.AppSerial || strings.Contains(string(mustRead(t, p.FixtureFile)), "# edited") {
		t.Error("a lost app key should make a new app cert and fixture")
	}
	// Garbage in the CA makes everything new.
	os.WriteFile(p.CAFile, []byte("garbage"), 0o644)
	u, err := fakeccp.EnsureDevPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.CA.Equal(p.CA) {
		t.Error("a corrupt CA was kept")
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseFixture: no input crashes the fixture parser, and what parses
// can be served.
func FuzzParseFixture(f *testing.F) {
	tmpl, err := fakeccp.RenderDevFixture("abc123")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tmpl)
	f.Add([]byte(authFixture))
	f.Add([]byte("safes: [{name: S, accounts: [{name: a, folder: 'Root\\x'}]}]"))
	f.Add([]byte("{\"faults\":{\"latency\":\"1s\"}}"))
	f.Add([]byte("&a [*a]"))
	// New only compiles the fixture; it needs a certificate value but does
	// not use it until Start.
	opts := fakeccp.Options{Certificate: &tls.Certificate{}, ClientAuth: fakeccp.ClientAuthIgnore}
	f.Fuzz(func(t *testing.T, data []byte) {
		fix, err := fakeccp.ParseFixture("fuzz.yaml", data)
		if err != nil {
			var fe *fakeccp.FixtureError
			var fes fakeccp.FixtureErrors
			if !errors.As(err, &fe) && !errors.As(err, &fes) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if _, err := fakeccp.New(fix, opts); err != nil {
			t.Fatalf("a valid fixture failed New: %v", err)
		}
	})
}

func TestFixturePasswords(t *testing.T) {
	fix, err := fakeccp.ParseFixture("f.yaml", []byte("safes:\n  - name: S\n    accounts:\n      - {name: a, password: pw-a}\n      - {name: b}\n  - name: T\n    accounts:\n      - {name: c, password: pw-c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fix.Passwords(), ","); got != "pw-a,pw-c" {
		t.Fatalf("Passwords() = %q", got)
	}
}
