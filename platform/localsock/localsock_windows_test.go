package localsock_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"github.com/credagent/credagent/platform/winver"
	"golang.org/x/sys/windows"
)

func pipeName(t *testing.T, prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + "credagent-test-" + hex.EncodeToString(b)
}

// checkSelf asserts that id is this process's token: its user SID and name,
// and every group that is enabled and not deny-only in its token.
func checkSelf(t *testing.T, id *localsock.Identity) {
	tok := windows.GetCurrentProcessToken()
	u, err := tok.GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	if id.SID != u.User.Sid.String() {
		t.Errorf("SID = %q, want %q", id.SID, u.User.Sid)
	}
	if acct, dom, _, err := u.User.Sid.LookupAccount(""); err == nil && !strings.EqualFold(id.Username, dom+`\`+acct) {
		t.Errorf("Username = %q, want %q", id.Username, dom+`\`+acct)
	}
	groups, err := tok.GetTokenGroups()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, g := range groups.AllGroups() {
		if g.Attributes&windows.SE_GROUP_ENABLED == 0 || g.Attributes&windows.SE_GROUP_USE_FOR_DENY_ONLY != 0 {
			continue
		}
		want++
		if !slices.Contains(id.GroupSIDs, g.Sid.String()) {
			t.Errorf("GroupSIDs lacks the enabled group %s: %v", g.Sid, id.GroupSIDs)
		}
	}
	if want == 0 || len(id.GroupSIDs) != want {
		t.Errorf("GroupSIDs has %d entries, the token %d enabled groups", len(id.GroupSIDs), want)
	}
	if id.PIDGuard != "handle" {
		t.Errorf("PIDGuard = %q, want handle", id.PIDGuard)
	}
	if id.UID != 0 || id.GID != 0 || len(id.Groups) != 0 {
		t.Errorf("Unix fields set on Windows: %+v", id)
	}
}

func TestContract(t *testing.T) {
	t.Run("Dev", func(t *testing.T) {
		localsocktest.Run(t, localsocktest.Config{
			NewPath:       func(t *testing.T) string { return pipeName(t, `\\.\pipe\`) },
			Options:       localsock.ListenOptions{Dev: true},
			CheckIdentity: checkSelf,
		})
	})
	t.Run("ProtectedPrefix", func(t *testing.T) {
		// Only an elevated administrator (or SYSTEM) may create pipes
		// under the prefix.
		if !windows.GetCurrentProcessToken().IsElevated() && !winver.IsWine() {
			t.Skip("creating a pipe under the protected prefix needs an elevated administrator")
		}
		localsocktest.Run(t, localsocktest.Config{
			NewPath:       func(t *testing.T) string { return pipeName(t, localsock.ProtectedPrefix) },
			Options:       localsock.ListenOptions{Allow: []string{"S-1-5-32-545"}},
			CheckIdentity: checkSelf,
		})
	})
}

func TestListenRefusals(t *testing.T) {
	tests := []struct {
		name string
		path string
		opts localsock.ListenOptions
		msg  string
	}{
		{"outside the protected prefix", pipeName(t, `\\.\pipe\`), localsock.ListenOptions{}, "ProtectedPrefix"},
		{"another pipe namespace", pipeName(t, `\\.\pipe\ProtectedPrefix\LocalService\`), localsock.ListenOptions{}, "ProtectedPrefix"},
		{"not a pipe", `C:\credagent\agent.sock`, localsock.ListenOptions{Dev: true}, "not a named pipe"},
		{"a remote pipe", `\\server\pipe\credagent`, localsock.ListenOptions{Dev: true}, "not a named pipe"},
		{"an unknown account allowed", pipeName(t, localsock.ProtectedPrefix), localsock.ListenOptions{Allow: []string{"no-such-account-credagent-test"}}, "api.pipe_allow"},
		{"a malformed SID allowed", pipeName(t, localsock.ProtectedPrefix), localsock.ListenOptions{Allow: []string{"S-1-5-x"}}, "api.pipe_allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := localsock.Listen(tt.path, tt.opts)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.msg)
			}
		})
	}
}

// TestFirstClientServed: the first client of a new listener is served at
// once. Under Wine it would meet go-winio's first pipe instance, which is
// never served, without Listen's workaround.
func TestFirstClientServed(t *testing.T) {
	for i := range 3 {
		path := pipeName(t, `\\.\pipe\`)
		ln, err := localsock.Listen(path, localsock.ListenOptions{Dev: true})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 1)
			if _, err := c.Read(buf); err == nil {
				c.Write(buf)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := localsock.Dial(ctx, path)
		if err != nil {
			cancel()
			ln.Close()
			t.Fatalf("listener %d: Dial: %v", i, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte{'x'})
		buf := make([]byte, 1)
		_, err = c.Read(buf)
		c.Close()
		cancel()
		ln.Close()
		if err != nil || buf[0] != 'x' {
			t.Fatalf("listener %d: the first client was not served: %v", i, err)
		}
	}
}
