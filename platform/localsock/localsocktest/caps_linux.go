package localsocktest

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// WithoutCaps runs fn on a thread whose effective capabilities lack those
// in drop (a mask of 1<<unix.CAP_*), as the agent runs under its systemd
// unit, and gives them back afterwards. It skips the test where the
// capabilities cannot be read or changed.
func WithoutCaps(t testing.TB, drop uint32, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Skip(err)
	}
	saved := data
	data[0].Effective &^= drop
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Skip(err)
	}
	defer func() {
		if err := unix.Capset(&hdr, &saved[0]); err != nil {
			t.Fatal(err)
		}
	}()
	fn()
}
