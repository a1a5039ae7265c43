package localapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"github.com/credagent/credagent/platform/winver"
	"golang.org/x/sys/windows"
)

// The second local user the test connects as; windows.yml creates it.
const (
	otherUserEnv     = "CREDAGENT_TEST_OTHER_USER"
	otherPasswordEnv = "CREDAGENT_TEST_OTHER_PASSWORD"
)

var (
	advapi32                    = windows.NewLazySystemDLL("advapi32.dll")
	procLogonUserW              = advapi32.NewProc("LogonUserW")
	procImpersonateLoggedOnUser = advapi32.NewProc("ImpersonateLoggedOnUser")
)

const (
	logon32LogonInteractive = 2 // LOGON32_LOGON_INTERACTIVE
	logon32ProviderDefault  = 0
)

// logonUser logs the other user on (interactively, so that its token has
// the INTERACTIVE group and not NETWORK, which the pipe denies outright).
func logonUser(t *testing.T, user, password string) windows.Token {
	t.Helper()
	u, _ := windows.UTF16PtrFromString(user)
	d, _ := windows.UTF16PtrFromString(".")
	p, _ := windows.UTF16PtrFromString(password)
	var tok windows.Token
	r, _, err := procLogonUserW.Call(uintptr(unsafe.Pointer(u)), uintptr(unsafe.Pointer(d)), uintptr(unsafe.Pointer(p)),
		logon32LogonInteractive, logon32ProviderDefault, uintptr(unsafe.Pointer(&tok)))
	if r == 0 {
		t.Fatalf("LogonUser %s: %v", user, err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// dialAs opens the pipe while impersonating tok, so the server sees that
// user; the thread reverts before it is given back.
func dialAs(tok windows.Token, path string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if r, _, err := procImpersonateLoggedOnUser.Call(uintptr(tok)); r == 0 {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("ImpersonateLoggedOnUser: %w", err)}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := localsock.Dial(ctx, path)
		cancel()
		if rerr := windows.RevertToSelf(); rerr != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{err: fmt.Errorf("RevertToSelf: %w", rerr)}
			return // the thread stays locked and exits with this goroutine
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// TestOtherUserRefused connects as a second local user. To a dev-mode pipe,
// whose DACL grants only the agent's user, Windows refuses the connection;
// to a pipe that lets BUILTIN\Users in, the connection is made and the
// policy (a rule for the agent's user only) refuses the request, with an
// audit record naming the other user's SID.
func TestOtherUserRefused(t *testing.T) {
	user, password := os.Getenv(otherUserEnv), os.Getenv(otherPasswordEnv)
	if user == "" {
		if winver.IsWine() {
			t.Skip("Wine: every process runs as the one administrator; there is no second user")
		}
		t.Skipf("set %s and %s to a second local user (windows.yml creates one)", otherUserEnv, otherPasswordEnv)
	}
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("needs an elevated administrator (a pipe under the protected prefix, and impersonation)")
	}
	tok := logonUser(t, user, password)

	t.Run("dev pipe: refused by the DACL", func(t *testing.T) {
		h := start(t, setup{})
		c, err := dialAs(tok, h.path)
		if err == nil {
			c.Close()
			t.Fatal("the other user connected to a pipe whose DACL grants only the agent's user")
		}
		if !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			t.Fatalf("dial as %s: %v, want access denied", user, err)
		}
		if recs := h.auditRecords(t); len(recs) != 0 {
			t.Errorf("audit records for a refused connection: %v", recs)
		}
	})

	t.Run("Users allowed on the pipe: refused by policy", func(t *testing.T) {
		h := start(t, setup{listen: func(t *testing.T) (string, localsock.ListenOptions) {
			return localsock.ProtectedPrefix + "credagent-test-other-" + fmt.Sprint(time.Now().UnixNano()),
				localsock.ListenOptions{Allow: []string{"S-1-5-32-545"}}
		}})
		c, err := dialAs(tok, h.path)
		if err != nil {
			t.Fatalf("dial as %s: %v", user, err)
		}
		used := false
		hc := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, errors.New("one connection only")
			}
			used = true
			return c, nil
		}}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Post("http://credagent/v1/resolve", "application/json",
			strings.NewReader(`{"run_id":"run-x","flow_id":"flow-x","names":["sap"]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("no rule matched")) {
			t.Fatalf("as %s: %d %s, want 403 with no rule matched", user, resp.StatusCode, body)
		}
		recs := h.auditRecords(t)
		if len(recs) != 1 {
			t.Fatalf("%d audit records, want 1", len(recs))
		}
		r := recs[0]
		self := localsocktest.SelfIdentity(t).SIDs[0]
		sid, _ := r["caller_sid"].(string)
		if r["outcome"] != "refused" || r["error_class"] != "forbidden" || !strings.HasPrefix(sid, "S-1-5-") || sid == self {
			t.Errorf("audit record %v: want a refusal naming the other user's SID", r)
		}
	})
}
