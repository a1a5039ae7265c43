package secrettest

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each way a key might reach a file is found, and a different key of the
// same kind is not mistaken for it.
func TestKeyNeedles(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	xk, _ := ecdh.P256().GenerateKey(rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecd, _ := ec.ECDH()
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	otherDER, _ := x509.MarshalPKCS8PrivateKey(other)

	needles, err := KeyNeedles("app", ec)
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]string{
		"pem":        "log line: " + pemText,
		"der":        string(der),
		"base64":     `{"k":"` + base64.StdEncoding.EncodeToString(der) + `"}`,
		"scalar hex": hex.EncodeToString(ecd.Bytes()),
		"one line":   strings.Split(pemText, "\n")[2],
	}
	for name, w := range written {
		if len(Find([]byte(w), needles)) == 0 {
			t.Errorf("%s: not found", name)
		}
	}
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER})
	if f := Find(otherPEM, needles); len(f) != 0 {
		t.Errorf("another key's PEM matched: %v", f)
	}
	for _, k := range []any{xk, ed} {
		ns, err := KeyNeedles("k", k)
		if err != nil || len(ns) < 8 {
			t.Errorf("%T: %d needles, %v", k, len(ns), err)
		}
	}
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	os.WriteFile(filepath.Join(dir, "agent.log"), []byte("resolved sap-prod-admin\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "state", "leak"), []byte("x Sap-Pr0d!pass y"), 0o600)
	r, err := ScanDir(dir, []Needle{Password("Sap-Pr0d!pass")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 2 || len(r.Found) != 1 || !strings.Contains(r.Found[0], filepath.Join("state", "leak")) || strings.Contains(r.Found[0], "Sap-Pr0d") {
		t.Fatalf("report %+v", r)
	}
}

// A planted password is found as it is and as JSON writes it; a password
// without characters JSON escapes has one needle only.
func TestPasswordNeedles(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		written string
		needles int
	}{
		{"raw", Planted, "log: " + Planted, 2},
		{"in a JSON log", Planted, `{"password":"Pl4nted\"S3cret\\!"}`, 2},
		{"plain password", "hunter2hunter2", `{"pw":"hunter2hunter2"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := PasswordNeedles(tt.pw)
			if len(n) != tt.needles {
				t.Fatalf("%d needles, want %d", len(n), tt.needles)
			}
			if len(Find([]byte(tt.written), n)) == 0 {
				t.Fatalf("the password is not found in %q", tt.written)
			}
			if len(Find([]byte("Pl4nted S3cret"), n)) != 0 {
				t.Fatal("a different string was taken for the password")
			}
		})
	}
}
