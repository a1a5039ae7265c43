package keystore

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestSoftKeyDoesNotPrintScalar: formatting or marshalling a key never shows
// its private scalar.
func TestSoftKeyDoesNotPrintScalar(t *testing.T) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := newSoftKey(priv)
	var key Key = k
	scalar := hex.EncodeToString(priv.Bytes())
	j, _ := json.Marshal(key)
	for _, s := range []string{
		fmt.Sprintf("%v", key), fmt.Sprintf("%+v", key), fmt.Sprintf("%#v", key),
		fmt.Sprintf("%x", key), fmt.Sprintf("%s", key), string(j),
	} {
		if strings.Contains(strings.ToLower(s), scalar) || strings.Contains(s, string(priv.Bytes())) {
			t.Fatalf("the scalar shows in %q", s)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"machine", "machine.next", "a", "A-b_c.9"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
}

func TestOpenUnknownBackend(t *testing.T) {
	if _, err := Open(Options{Backend: "hsm"}); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Open(Options{Backend: "file"}); err == nil {
		t.Fatal("file backend without a directory")
	}
}
