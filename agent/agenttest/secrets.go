package agenttest

import (
	"os"
	"testing"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/secret/secrettest"
)

// Planted is the password the tests' fakes hand out; no log, audit record
// or file may hold it (secrettest.Planted).
const Planted = secrettest.Planted

// Needles are the forms of the secrets a test planted: each password as it
// is and JSON-escaped, and, when pki is set, every encoding of its
// application's private key. It checks itself first: the key's needles
// must find the key in the fake CCP's own app.key.
func Needles(t testing.TB, pki *fakeccp.DevPKI, passwords ...string) []secrettest.Needle {
	t.Helper()
	var needles []secrettest.Needle
	for _, pw := range passwords {
		needles = append(needles, secrettest.PasswordNeedles(pw)...)
	}
	if pki == nil {
		return needles
	}
	key, err := secrettest.KeyNeedles("application key", pki.App.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(pki.AppKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(secrettest.Find(own, key)) == 0 {
		t.Fatal("scanner self-check: the application key is not found in its own file")
	}
	return append(needles, key...)
}

// NoSecrets fails the test for each needle found in b, which what names
// ("the agent's log").
func NoSecrets(t testing.TB, what string, b []byte, needles []secrettest.Needle) {
	t.Helper()
	for _, f := range secrettest.Find(b, needles) {
		t.Errorf("%s holds the %s", what, f)
	}
}

// NoSecretsInDir fails the test for each needle found in a file under dir,
// and if fewer than minFiles files were scanned (a scan of nothing proves
// nothing).
func NoSecretsInDir(t testing.TB, dir string, needles []secrettest.Needle, minFiles int) {
	t.Helper()
	r, err := secrettest.ScanDir(dir, needles)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Found {
		t.Errorf("%s", f)
	}
	if r.Files < minFiles {
		t.Fatalf("scanned only %d files under %s, want at least %d", r.Files, dir, minFiles)
	}
}
