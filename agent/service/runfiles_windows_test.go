package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/platform/winver"
)

// TestCheckServiceFilesRefusesUserFiles: a config in the user's own temp
// folder can be changed by that user, so the service refuses it (S1).
// Under Wine, which enforces no ACLs, the finding is a warning and the
// agent starts.
func TestCheckServiceFilesRefusesUserFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	warnings, err := CheckServiceFiles(cfg, filepath.Join(dir, "log", "agent.log"))
	if winver.IsWine() {
		if err != nil {
			t.Fatalf("under Wine the check must only warn: %v", err)
		}
		t.Logf("warnings under Wine: %q", warnings)
		return
	}
	if err == nil || !strings.Contains(err.Error(), "the config file") {
		t.Fatalf("a config in a user's temp folder was accepted (%v, warnings %q)", err, warnings)
	}
}
