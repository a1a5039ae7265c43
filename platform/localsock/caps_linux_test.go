package localsock_test

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// TestPeerOfWithTheUnitsCapabilities: the shipped unit runs the agent as
// root with an empty capability bounding set, and the README's drop-in for
// executable rules adds only CAP_SYS_PTRACE. With neither CAP_KILL nor
// anything else, PeerOf must still give another user's caller its
// supplementary groups and its pid guard, and its executable where
// CAP_SYS_PTRACE is kept. (Checking that the caller is alive with
// pidfd_send_signal needed CAP_KILL, and without it every non-root caller
// lost its groups and executable: gids and executables rules never
// matched.)
func TestPeerOfWithTheUnitsCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drop    uint32
		wantExe bool
	}{
		{"all capabilities", 0, true},
		{"the README's drop-in: CAP_SYS_PTRACE kept, no CAP_KILL", 1 << unix.CAP_KILL, true},
		// Another user's executable is unreadable without CAP_SYS_PTRACE
		// (README); its groups are in the world-readable /proc/PID/status.
		{"the shipped unit: no capabilities", ^uint32(0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group, gid := localsocktest.NewGroup(t)
			u := localsocktest.NewUser(t, group)
			// The account goes at the end of the test, and a later test's
			// may get its uid: forget the name PeerOf cached for it.
			t.Cleanup(localsock.FlushNames)
			path := filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock")
			ln, err := localsock.Listen(path, localsock.ListenOptions{Group: group})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cmd := localsocktest.CommandAs(t, u, []string{dialEnv + "=" + path})
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			// The client says hello and waits for ours before it exits:
			// it is alive while PeerOf runs.
			buf := make([]byte, 2)
			io.ReadFull(c, buf)
			var id *localsock.Identity
			localsocktest.WithoutCaps(t, tc.drop, func() { id, err = localsock.PeerOf(c) })
			io.WriteString(c, "hi")
			if err != nil {
				t.Fatal(err)
			}
			if !id.InGroup(gid) || (tc.wantExe && id.Exe == "") || id.PIDGuard == "" {
				t.Errorf("caller %s is in supplementary group %d and runs %s, but PeerOf gives groups=%v exe=%q guard=%q",
					u.Name, gid, cmd.Path, id.Groups, id.Exe, id.PIDGuard)
			}
		})
	}
}
