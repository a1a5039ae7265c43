package logging

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/secret"
)

func TestStreams(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		cfg       Options
		wantLog   string // file the operational log lands in ("" = stderr)
		wantAudit string
	}{
		{"stderr", Options{Level: "info", Format: "json"}, "", ""},
		{"file", Options{Level: "debug", Format: "json", File: filepath.Join(dir, "a.log")}, "a.log", "a.log"},
		{"separate audit", Options{Level: "info", Format: "json", File: filepath.Join(dir, "b.log"), AuditFile: filepath.Join(dir, "b.audit")}, "b.log", "b.audit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ls, err := New(tt.cfg, &stderr, nil)
			if err != nil {
				t.Fatal(err)
			}
			pw := secret.FromString("planted-Pa55!")
			ls.Log.Info().Any("password", pw).Msg("op")
			ls.Log.Debug().Msg("dbg")
			ls.Audit.Info().Str("outcome", "ok").Msg("resolve")
			ls.Close()

			read := func(name string) string {
				if name == "" {
					return stderr.String()
				}
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			logText, auditText := read(tt.wantLog), read(tt.wantAudit)
			if !strings.Contains(logText, `"message":"op"`) {
				t.Errorf("operational log missing record: %s", logText)
			}
			if strings.Contains(logText, `"dbg"`) != (tt.cfg.Level == "debug") {
				t.Errorf("level %s not honoured: %s", tt.cfg.Level, logText)
			}
			var found bool
			for _, line := range strings.Split(strings.TrimSpace(auditText), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["stream"] == "audit" {
					found = true
				}
			}
			if !found {
				t.Errorf("no audit record in %q", auditText)
			}
			for _, s := range []string{logText, auditText} {
				if strings.Contains(s, "planted-Pa55!") {
					t.Errorf("secret leaked: %s", s)
				}
			}
		})
	}
}

func TestBadLevel(t *testing.T) {
	if _, err := New(Options{Level: "loud", Format: "json"}, &bytes.Buffer{}, nil); err == nil {
		t.Fatal("want error for unknown level")
	}
}

// TestAuditFileNotThroughSymlink plants a symlink where the audit file goes:
// the logs refuse to open rather than append to, and chmod, its target.
func TestAuditFileNotThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(target, []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, audit); err != nil {
		if runtime.GOOS == "windows" {
			t.Skipf("creating a symlink needs SeCreateSymbolicLinkPrivilege here: %v", err)
		}
		t.Fatal(err)
	}
	if fi, err := os.Lstat(audit); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Skip("the system reported a symlink made but made none (Wine's CreateSymbolicLink)")
	}
	ls, err := New(Options{Level: "info", Format: "json", File: filepath.Join(dir, "agent.log"), AuditFile: audit}, &bytes.Buffer{}, nil)
	if err == nil {
		ls.Close()
		t.Fatal("the logs opened an audit file that is a symlink")
	}
	if b, _ := os.ReadFile(target); string(b) != "root:x:0:0\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 {
		t.Errorf("the symlink's target was chmodded to %v", fi.Mode().Perm())
	}
}
