package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	a := goodApp(t)
	toMe := Machine(testMachine)
	tests := []struct {
		name    string
		content Content
		to      Address
		sealTo  func() *Delivery
	}{
		{"application", a.app, toMe, nil},
		{"group-key", &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, toMe, nil},
		{"store", testStore(), Group(testGroup), nil},
		{"credential", testCredential(), toMe, nil},
		{"revoke", &Revoke{KindStore}, toMe, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rcpt = machineKey.PublicKey()
			if !tt.content.Kind().Sealed() {
				rcpt = nil
			}
			d, err := Create(hdr("rt-"+tt.name, "obj", 3, tt.to), tt.content, rcpt, edSigner)
			if err != nil {
				t.Fatal(err)
			}
			b := d.Marshal()
			p, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, b)
			}
			if !bytes.Equal(p.Marshal(), b) {
				t.Fatal("re-marshal differs")
			}
			if _, err := p.Open(machineKey); !errors.Is(err, ErrNotVerified) {
				t.Fatalf("Open before Verify: %v, want ErrNotVerified", err)
			}
			if err := p.Verify(pinned); err != nil {
				t.Fatal(err)
			}
			c, err := p.Open(machineKey)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind() != tt.content.Kind() {
				t.Fatalf("kind %s", c.Kind())
			}
			if want, _ := tt.content.marshal(); true {
				got, _ := c.marshal()
				if !bytes.Equal(got, want) {
					t.Fatalf("content differs:\n%s\n%s", got, want)
				}
			}
			if p.Object() != (Object{Kind: tt.content.Kind(), Name: "obj"}) && tt.name != "revoke" {
				t.Fatalf("object %v", p.Object())
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	toMe := Machine(testMachine)
	tests := []struct {
		name string
		h    Header
		c    Content
		to   bool
		want error
	}{
		{"sealed kind without recipient", hdr("x", "a", 1, toMe), goodApp(t).app, false, ErrInvalid},
		{"revocation with recipient", hdr("x", "a", 1, toMe), &Revoke{KindStore}, true, ErrInvalid},
		{"seq zero", hdr("x", "a", 0, toMe), testStore(), false, ErrMalformed},
		{"bad id", hdr("a b", "a", 1, toMe), testStore(), false, ErrMalformed},
		{"name with newline", hdr("x", "a\nkind: store", 1, toMe), testStore(), false, ErrMalformed},
		{"no created", Header{ID: "x", Target: "a", Seq: 1, To: toMe}, testStore(), false, ErrMalformed},
		{"expires before created", Header{ID: "x", Target: "a", Seq: 1, To: toMe, Created: vectorCreate, Expires: vectorCreate.Add(-time.Hour)}, testStore(), false, ErrMalformed},
		{"store without servers", hdr("x", "a", 1, toMe), &Store{AppID: "a"}, false, ErrInvalid},
		{"credential with both", hdr("x", "a", 1, toMe), &Credential{Store: "s", Object: "o", Query: "q"}, false, ErrInvalid},
		{"revoke revoke", hdr("x", "a", 1, toMe), &Revoke{KindRevoke}, false, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r = machineKey.PublicKey()
			if !tt.to {
				r = nil
			}
			_, err := Create(tt.h, tt.c, r, edSigner)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	a := goodApp(t)
	d := mk(t, hdr("p", "app-sap", 1, Machine(testMachine)), a.app, machineKey.PublicKey(), edSigner)
	_ = d.Verify(pinned)
	c, err := d.Open(machineKey)
	if err != nil {
		t.Fatal(err)
	}
	key := string(a.app.PrivateKey.Reveal())
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), fmt.Sprintf("%x", c)} {
		if strings.Contains(s, key) || strings.Contains(s, fmt.Sprintf("%x", key)) || strings.Contains(s, b64.EncodeToString([]byte(key))) {
			t.Fatal("private key printed")
		}
	}
}

func TestReason(t *testing.T) {
	for _, r := range reasons {
		if got := Reason(fmt.Errorf("x: %w", r.err)); got != r.code {
			t.Errorf("Reason(%v) = %s", r.err, got)
		}
	}
	if Reason(errors.New("other")) != "error" {
		t.Error("unknown error")
	}
}

// FuzzParse checks that Parse never panics, that whatever it accepts
// re-marshals to the same bytes (no malleability in the encoding), and that
// the checks never accept a mutated input.
func FuzzParse(f *testing.F) {
	addVectorSeeds(f, vectorDir)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if Reason(err) == "error" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if got := d.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("malleable: parsed and re-marshalled differently\n%q\n%q", b, got)
		}
		c := testChecker()
		if _, _, err := c.Check(b); err != nil && Reason(err) == "error" {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// An application refused by its certificate checks (expired, wrong key, bad
// chain) must not leave its decrypted PKCS#8 key in memory.
func TestRefusedApplicationKeyWiped(t *testing.T) {
	expired := makeApp(t, appKey, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC))
	mismatch := makeApp(t, otherAppKey, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
	junk := goodApp(t)
	junk.app.Chain = [][]byte{[]byte("not a certificate")}
	for name, fx := range map[string]appFixture{"expired": expired, "key-mismatch": mismatch, "malformed": junk} {
		held := fx.app.PrivateKey.Reveal()
		if _, err := fx.app.Certificate(vectorNow); err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if !bytes.Equal(held, make([]byte, len(held))) {
			t.Errorf("%s: the refused application's private key was not wiped", name)
		}
	}
	good := goodApp(t)
	held := good.app.PrivateKey.Reveal()
	if _, err := good.app.Certificate(vectorNow); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(held, make([]byte, len(held))) {
		t.Error("an accepted application's key was wiped by Certificate")
	}
}
