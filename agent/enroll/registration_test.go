package enroll

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/keystore"
)

func validDoc(t testing.TB) []byte {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := New("rpa-01", "rpa-01.example", "linux", "v1", keystore.Info{Backend: "file"}, k.PublicKey(), time.Unix(1700000000, 0))
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	good := validDoc(t)
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, doc, wantErr string
	}{
		{"valid", string(good), ""},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), "unknown key"},
		// Keys match exactly and once: a portal reading the first
		// "machine_id" must not see another machine than the agent meant.
		{"case-variant key", strings.Replace(string(good), `"machine_id"`, `"Machine_ID"`, 1), `unknown key "Machine_ID"`},
		{"case-variant duplicate", strings.Replace(string(good), `"machine_id"`, `"MACHINE_ID": "other", "machine_id"`, 1), `unknown key "MACHINE_ID"`},
		{"duplicate", strings.Replace(string(good), `"machine_id"`, `"machine_id": "other", "machine_id"`, 1), `duplicate key "machine_id"`},
		{"null", edit(func(m map[string]any) { m["hostname"] = nil }), "null"},
		{"wrong schema", edit(func(m map[string]any) { m["schema"] = "v0" }), "schema"},
		{"wrong suite", edit(func(m map[string]any) { m["hpke_suite"] = "X25519" }), "not supported"},
		{"not base64", edit(func(m map[string]any) { m["public_key"] = "%%%" }), "public_key"},
		{"not a point", edit(func(m map[string]any) { m["public_key"] = "BAAA" }), "public_key"},
		{"key id mismatch", edit(func(m map[string]any) { m["key_id"] = "00" }), "key_id"},
		{"fingerprint mismatch", edit(func(m map[string]any) { m["fingerprint"] = "00" }), "fingerprint"},
		{"empty machine", edit(func(m map[string]any) { m["machine_id"] = " " }), "machine_id"},
		{"too large", strings.Repeat(" ", MaxBytes+1), "too large"},
		{"not json", "<html>", "registration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, pub, err := Parse(strings.NewReader(tt.doc))
			if tt.wantErr == "" {
				if err != nil || pub == nil || r.KeyID != keystore.KeyID(pub) {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzParse: a registration document comes from the machine to the portal;
// whatever it holds, Parse returns a consistent key or an error.
func FuzzParse(f *testing.F) {
	f.Add(validDoc(f))
	f.Add([]byte(`{"schema":"credagent-registration/v1"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, pub, err := Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		if pub == nil || r.KeyID != keystore.KeyID(pub) || r.Fingerprint != keystore.Fingerprint(pub) {
			t.Fatalf("accepted an inconsistent document: %+v", r)
		}
	})
}
