package daemon_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/daemon"
)

// TestDevConfigAddsPins: signing keys pinned in DIR/config.yaml are added to
// the dev signing key, which stays trusted (README, dev mode).
func TestDevConfigAddsPins(t *testing.T) {
	dir := t.TempDir()
	first, err := daemon.DevConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Portal.SigningKeys) != 1 {
		t.Fatalf("dev keys %d", len(first.Portal.SigningKeys))
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	other := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	doc := "portal:\n  signing_keys:\n  - |\n    " + strings.ReplaceAll(strings.TrimSpace(other), "\n", "\n    ") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := daemon.DevConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Portal.SigningKeys) != 2 || !slices.Contains(c.Portal.SigningKeys, first.Portal.SigningKeys[0]) {
		t.Fatalf("signing keys after config.yaml: %d, dev key kept: %v", len(c.Portal.SigningKeys),
			slices.Contains(c.Portal.SigningKeys, first.Portal.SigningKeys[0]))
	}
}
