package config

import (
	"strings"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
)

// TestNamesFromTheirPackages: every key store backend and every operation
// is accepted, and a bad one is refused with the list of good ones.
func TestNamesFromTheirPackages(t *testing.T) {
	t.Parallel()
	for _, b := range keystore.Backends() {
		c := Default()
		c.KeyStore.Backend = b
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "keystore.backend") {
			t.Errorf("backend %q refused: %v", b, err)
		}
	}
	c := Default()
	c.KeyStore.Backend = "hsm"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), strings.Join(keystore.Backends(), ", ")) {
		t.Errorf("a bad backend's error does not list the backends: %v", err)
	}
	for _, op := range append(Operations(), "delete") {
		c := Default()
		c.Policy.Rules = []Rule{{Name: "r", UIDs: []uint32{1000}, Credentials: []string{"*"}, Operations: []string{op}}}
		err := c.Validate()
		refused := err != nil && strings.Contains(err.Error(), ".operations")
		if refused != (op == "delete") {
			t.Errorf("operation %q: %v", op, err)
		}
	}
}
