package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/keystore"
)

// TestKeyStoreMissingKeyWithState: no machine key is a warning on a new
// machine, but a failure that asks for enroll --rotate when a registration
// or sealed records show the machine had one.
func TestKeyStoreMissingKeyWithState(t *testing.T) {
	for _, tt := range []struct {
		name  string
		prep  func(t *testing.T, state string)
		level Level
		fix   string
	}{
		{"new machine", func(*testing.T, string) {}, Warn, "credagent enroll"},
		{"registration left", func(t *testing.T, state string) {
			os.WriteFile(filepath.Join(state, enroll.FileName), []byte("{}"), 0o600)
		}, Fail, "enroll --rotate"},
		{"sealed records left", func(t *testing.T, state string) {
			d := filepath.Join(state, "records", "application")
			os.MkdirAll(d, 0o700)
			os.WriteFile(filepath.Join(d, "ab.delivery"), []byte("x"), 0o600)
		}, Fail, "enroll --rotate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Paths.StateDir = t.TempDir()
			tt.prep(t, cfg.Paths.StateDir)
			env := &Env{Config: &cfg, OpenKeyStore: func(config.KeyStore) (keystore.Store, error) { return keystore.NewMemoryStore(), nil }}
			rs := env.checkKeyStore(context.Background())
			if len(rs) != 1 || rs[0].Level != tt.level || !strings.Contains(rs[0].Fix, tt.fix) {
				t.Fatalf("got %+v, want %s with fix %q", rs, tt.level, tt.fix)
			}
		})
	}
}
