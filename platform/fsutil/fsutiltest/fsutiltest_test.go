package fsutiltest_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/fsutil/fsutiltest"
)

// The file fsutil wrote is private until LetOthersRead, then refused.
func TestLetOthersRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := fsutil.WritePrivateFile(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := fsutil.ReadPrivateFile(p, 10); err != nil {
		t.Fatalf("before: %v", err)
	}
	fsutiltest.LetOthersRead(t, p)
	if _, err := fsutil.ReadPrivateFile(p, 10); !errors.Is(err, fsutil.ErrInsecure) {
		t.Fatalf("after LetOthersRead: %v, want ErrInsecure", err)
	}
}
