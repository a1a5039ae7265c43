package keystore

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

func TestECCPublicBlobRoundTrip(t *testing.T) {
	for range 20 {
		priv, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := eccPublicBlob(priv.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != 72 || !bytes.Equal(blob[:4], []byte("ECK1")) || !bytes.Equal(blob[4:8], []byte{32, 0, 0, 0}) {
			t.Fatalf("header % x, want \"ECK1\" 20 00 00 00", blob[:8])
		}
		if !bytes.Equal(blob[8:], priv.PublicKey().Bytes()[1:]) {
			t.Fatal("X||Y not copied big-endian")
		}
		pub, err := parseECCPublicBlob(blob)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(priv.PublicKey()) {
			t.Fatal("round trip changed the key")
		}
	}
}

// TestECCPublicBlobVector checks the layout against a fixed point: the P-256
// generator G, written out by hand from bcrypt.h's description.
func TestECCPublicBlobVector(t *testing.T) {
	const gx = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
	const gy = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
	blob, _ := hex.DecodeString("45434b31" + "20000000" + gx + gy)
	pub, err := parseECCPublicBlob(blob)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub.Bytes()); got != "04"+gx+gy {
		t.Fatalf("point %s", got)
	}
	back, _ := eccPublicBlob(pub)
	if !bytes.Equal(back, blob) {
		t.Fatalf("re-encoded % x", back)
	}
}

func TestParseECCPublicBlobRejects(t *testing.T) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	good, _ := eccPublicBlob(priv.PublicKey())
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		blob []byte
		want string
	}{
		{"empty", nil, "0 bytes"},
		{"ECDSA magic", mut(func(b []byte) []byte { copy(b, "ECS1"); return b }), "magic"},
		{"private magic", mut(func(b []byte) []byte { copy(b, "ECK2"); return b }), "magic"},
		{"P-384 size", mut(func(b []byte) []byte { b[4] = 48; return b }), "cbKey"},
		{"short", good[:71], "cbKey"},
		{"long", append(bytes.Clone(good), 0), "cbKey"},
		{"off curve", mut(func(b []byte) []byte { b[71] ^= 1; return b }), "point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseECCPublicBlob(tt.blob)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestRawSecretToX simulates what CNG returns: the X coordinate reversed.
func TestRawSecretToX(t *testing.T) {
	a, _ := ecdh.P256().GenerateKey(rand.Reader)
	b, _ := ecdh.P256().GenerateKey(rand.Reader)
	want, _ := a.ECDH(b.PublicKey())
	le := bytes.Clone(want)
	for i, j := 0, len(le)-1; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	got, err := rawSecretToX(le)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("rawSecretToX = %x, %v; want %x", got, err, want)
	}
	if _, err := rawSecretToX(le[:31]); err == nil {
		t.Fatal("accepted a 31-byte secret")
	}
	seq := make([]byte, 32)
	for i := range seq {
		seq[i] = byte(i)
	}
	got, _ = rawSecretToX(seq)
	if got[0] != 31 || got[31] != 0 {
		t.Fatalf("not reversed: %x", got)
	}
}

func TestCNGKeySDDL(t *testing.T) {
	if !strings.HasPrefix(CNGKeySDDL, "D:P") {
		t.Fatalf("%q: DACL must be protected", CNGKeySDDL)
	}
	for _, ace := range strings.Split(strings.TrimPrefix(CNGKeySDDL, "D:P"), ")(") {
		f := strings.Split(strings.Trim(ace, "()"), ";")
		if len(f) != 6 || f[0] != "A" || (f[5] != "SY" && f[5] != "BA") {
			t.Fatalf("unexpected ACE %q", ace)
		}
	}
	if cngKeyName("machine") != "credagent-machine" {
		t.Fatal(cngKeyName("machine"))
	}
}

// TestCNGFlags pins the dwFlags passed to ncrypt.dll, whose meaning only
// Windows checks.
func TestCNGFlags(t *testing.T) {
	// NCryptSetProperty(Security Descr): the DACL part, silently, and not
	// NCRYPT_PERSIST_FLAG (see securityDescrFlags).
	if securityDescrFlags != 0x44 {
		t.Errorf("securityDescrFlags = %#x, want DACL_SECURITY_INFORMATION|NCRYPT_SILENT_FLAG (0x44)", securityDescrFlags)
	}
	if securityDescrFlags&ncryptPersistFlag != 0 {
		t.Error("securityDescrFlags has NCRYPT_PERSIST_FLAG")
	}
	if exportPolicyFlags != 0x80000040 {
		t.Errorf("exportPolicyFlags = %#x, want NCRYPT_PERSIST_FLAG|NCRYPT_SILENT_FLAG", exportPolicyFlags)
	}
	// NCryptCreatePersistedKey: the machine-key flag alone; it does not
	// document NCRYPT_SILENT_FLAG, and must never overwrite a key.
	if createKeyFlags != ncryptMachineKeyFlag {
		t.Errorf("createKeyFlags = %#x, want NCRYPT_MACHINE_KEY_FLAG (0x20) alone", createKeyFlags)
	}
	for _, c := range []struct {
		impl uint32
		want bool
	}{{1, true}, {2, false}, {3, true}, {0, false}, {8, false}} {
		if got := keyIsHardware(c.impl); got != c.want {
			t.Errorf("keyIsHardware(%#x) = %v, want %v", c.impl, got, c.want)
		}
	}
	if got := deleteKeyFlags(true); got != 0 {
		t.Errorf("deleteKeyFlags(platform) = %#x, want 0", got)
	}
	if got := deleteKeyFlags(false); got != ncryptSilentFlag {
		t.Errorf("deleteKeyFlags(software) = %#x, want NCRYPT_SILENT_FLAG", got)
	}
	for _, c := range []struct {
		platform bool
		status   uint32
		want     bool
	}{
		{true, nteNotSupported, true},
		{false, nteNotSupported, false}, // the software provider must honour it
		{true, 0x80090009, false},       // NTE_BAD_FLAGS is a bug, not a gap
	} {
		if got := exportPolicyOptional(c.platform, c.status); got != c.want {
			t.Errorf("exportPolicyOptional(%v, %#x) = %v, want %v", c.platform, c.status, got, c.want)
		}
	}
}
