package localsocktest

import (
	"testing"

	"golang.org/x/sys/windows"
)

// SelfIdentity returns this process's user SID.
func SelfIdentity(t testing.TB) Self {
	t.Helper()
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatalf("reading this process's user: %v", err)
	}
	return Self{SIDs: []string{u.User.Sid.String()}}
}
