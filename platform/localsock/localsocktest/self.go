package localsocktest

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"runtime"
	"testing"
)

// DevPath returns a fresh place for a dev-mode listener of this test: a
// socket path in a temporary directory on Unix, a pipe name on Windows (dev
// mode may live outside the protected prefix, and needs no administrator).
func DevPath(t testing.TB) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		return `\\.\pipe\credagent-test-` + randomName(t)
	}
	return filepath.Join(t.TempDir(), "agent.sock")
}

func randomName(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Self is how a policy rule names this process's user: its uid on Unix, its
// user SID on Windows (where the uid is meaningless: os.Getuid is -1).
type Self struct {
	UIDs []uint32
	SIDs []string
}
