// Package secrettest looks for planted secrets in what a test run wrote:
// logs, state directories, container files. A needle is one form a secret
// could take on disk; KeyNeedles lists every common encoding of a private
// key, so that a key written as PEM, DER, base64 or a bare scalar is found.
package secrettest

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Needle is one form of a secret to look for.
type Needle struct {
	What  string // says what was found, without the secret itself
	Bytes []byte
}

// Planted is the password the tests' fakes hand out (agent/agenttest): no
// log, audit record or file may ever hold it. It has a quote and a
// backslash, so that its JSON form differs from it: a scan must look for
// both (PasswordNeedles).
const Planted = `Pl4nted"S3cret\!`

// Password is the needle of a planted password. What names only its length.
func Password(pw string) Needle {
	return Needle{What: fmt.Sprintf("password (%d bytes)", len(pw)), Bytes: []byte(pw)}
}

// PasswordNeedles are the forms of a planted password in what the agent
// writes: as it is, and as a JSON string's content (its logs and audit are
// JSON), when that differs.
func PasswordNeedles(pw string) []Needle {
	out := []Needle{Password(pw)}
	b, _ := json.Marshal(pw)
	if esc := b[1 : len(b)-1]; string(esc) != pw {
		out = append(out, Needle{What: fmt.Sprintf("password (%d bytes, JSON-escaped)", len(pw)), Bytes: esc})
	}
	return out
}

// KeyNeedles are the forms of a private key: its PKCS#8 PEM, each line of
// the PEM body, the DER, the DER in base64 and base64url, and the private
// scalar or seed raw, in hex, base64 and base64url. Every P-256 PKCS#8 key
// starts with the same bytes, so only whole encodings and the parts that
// hold key material are needles.
func KeyNeedles(name string, key crypto.PrivateKey) ([]Needle, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("secrettest: %s: %w", name, err)
	}
	pemText := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	out := []Needle{
		{name + " (PEM)", []byte(pemText)},
		{name + " (DER)", der},
		{name + " (base64 DER)", []byte(base64.StdEncoding.EncodeToString(der))},
		{name + " (base64url DER)", []byte(base64.RawURLEncoding.EncodeToString(der))},
	}
	lines := strings.Split(pemText, "\n")
	for i, l := range lines[1 : len(lines)-1] {
		// The first line of a P-256 key is mostly the shared header but
		// ends in key bytes; every line holds some of the key.
		out = append(out, Needle{fmt.Sprintf("%s (PEM line %d)", name, i+1), []byte(l)})
	}
	var raw []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if ek, err := k.ECDH(); err == nil {
			raw = ek.Bytes()
		}
	case *ecdh.PrivateKey:
		raw = k.Bytes()
	case ed25519.PrivateKey:
		raw = k.Seed()
	}
	if raw != nil {
		out = append(out,
			Needle{name + " (raw scalar)", raw},
			Needle{name + " (hex scalar)", []byte(hex.EncodeToString(raw))},
			Needle{name + " (base64 scalar)", []byte(base64.StdEncoding.EncodeToString(raw))},
			Needle{name + " (base64url scalar)", []byte(base64.RawURLEncoding.EncodeToString(raw))},
		)
	}
	return out, nil
}

// Find returns what of needles b holds.
func Find(b []byte, needles []Needle) []string {
	var found []string
	for _, n := range needles {
		if len(n.Bytes) > 0 && bytes.Contains(b, n.Bytes) {
			found = append(found, n.What)
		}
	}
	return found
}

// Report is the result of ScanDir.
type Report struct {
	Found []string // "WHAT in RELATIVE/PATH"
	Files int
	Bytes int
}

// ScanDir reads every regular file under dir (sockets, links and the like
// are skipped) and reports where needles were found.
func ScanDir(dir string, needles []Needle) (Report, error) {
	var r Report
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r.Files++
		r.Bytes += len(b)
		rel, _ := filepath.Rel(dir, p)
		for _, what := range Find(b, needles) {
			r.Found = append(r.Found, what+" in "+rel)
		}
		return nil
	})
	return r, err
}
