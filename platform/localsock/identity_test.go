package localsock

import (
	"os"
	"runtime"
	"testing"
)

func TestPrivileged(t *testing.T) {
	type test struct {
		name string
		id   *Identity
		want bool
	}
	tests := []test{
		{"nil", nil, false},
		// The zero value is nobody, although its UID reads as root's.
		{"zero value", &Identity{}, false},
		{"unverified root", &Identity{UID: 0, Username: "root", PID: 1}, false},
		{"unverified SYSTEM", &Identity{SID: SIDLocalSystem}, false},
		{"root", &Identity{Verified: true, UID: 0}, true},
		{"SYSTEM", &Identity{Verified: true, SID: SIDLocalSystem}, true},
		{"an Administrator", &Identity{Verified: true, SID: "S-1-5-21-1-2-3-1001", GroupSIDs: []string{"S-1-5-32-545", SIDAdministrators}}, true},
		{"a Windows user", &Identity{Verified: true, SID: "S-1-5-21-1-2-3-1002", GroupSIDs: []string{"S-1-5-32-545"}}, false},
		// A Windows caller is judged by its SID only, never by a zero UID.
		{"a Windows user with UID 0", &Identity{Verified: true, UID: 0, SID: "S-1-5-21-1-2-3-1003"}, false},
	}
	// The agent's own uid is a Unix notion: on Windows os.Getuid is -1 and
	// callers are told apart by SID (above).
	if runtime.GOOS != "windows" {
		self := uint32(os.Getuid())
		tests = append(tests,
			test{"the agent's own user", &Identity{Verified: true, UID: self}, true},
			test{"another user", &Identity{Verified: true, UID: self + 12345}, self+12345 == 0},
		)
	}
	for _, tt := range tests {
		if got := tt.id.Privileged(); got != tt.want {
			t.Errorf("%s: Privileged() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
