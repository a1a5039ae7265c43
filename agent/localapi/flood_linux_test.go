package localapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// groupSocket listens in a fresh public directory with group as the socket
// group.
func groupSocket(group string) func(t *testing.T) (string, localsock.ListenOptions) {
	return func(t *testing.T) (string, localsock.ListenOptions) {
		return filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock"), localsock.ListenOptions{Group: group}
	}
}

// holdAs starts the test binary as u in child mode (hold:N or slow:N) and
// waits until it holds its connections. It returns the child's report and
// a function that lets it go.
func holdAs(t *testing.T, u localsocktest.User, sock, mode string) (report string, release func()) {
	t.Helper()
	cmd := localsocktest.CommandAs(t, u, []string{childEnv + "=" + mode, childSockEnv + "=" + sock}, "-test.run=^$")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			stdin.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		var out []string
		for sc.Scan() {
			if sc.Text() == "ready" {
				lines <- strings.Join(out, "\n")
				io.Copy(io.Discard, stdout)
				return
			}
			out = append(out, sc.Text())
		}
		lines <- strings.Join(out, "\n") + "\n(child ended before ready)"
	}()
	select {
	case report = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatal("the child did not get ready within 60 s")
	}
	if strings.Contains(report, "child ended") {
		t.Fatalf("child: %s", report)
	}
	return report, release
}

// TestConnectionCaps runs a socket-group member with no rule that opens
// many connections and keeps them: the agent holds only as many as its
// caps allow, refuses the rest at once, and root is still served.
func TestConnectionCaps(t *testing.T) {
	group, _ := localsocktest.NewGroup(t)
	flooder := localsocktest.NewUser(t, group)
	tests := []struct {
		name     string
		cfg      localapi.Config
		open     int
		wantHeld int
	}{
		{"per caller", localapi.Config{Limits: localapi.Limits{MaxConnectionsPerCaller: 8}}, 50, 8},
		// 16 in all, of which 8 are kept for privileged callers.
		{"all callers, room kept for root", localapi.Config{Limits: localapi.Limits{MaxConnections: 16, MaxConnectionsPerCaller: 100}}, 30, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, setup{cfg: tt.cfg, listen: groupSocket(group)})
			report, release := holdAs(t, flooder, h.path, fmt.Sprintf("hold:%d", tt.open))
			defer release()
			want := fmt.Sprintf("held=%d answered=%d", tt.wantHeld, tt.open-tt.wantHeld)
			if !strings.Contains(report, want) {
				t.Fatalf("flooder: %s; want %s", report, want)
			}
			for range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := h.client.Resolve(ctx, "r", "f", "sap")
				cancel()
				if err != nil {
					t.Fatalf("root while the flooder holds its connections: %v", err)
				}
				res.Wipe()
				h.client.Close() // a new connection each time
			}
		})
	}
}

// TestNoRuleFloodDoesNotStarveRunner is the attack of issue 13 item 3: a
// socket-group member with no rule sends requests whose body never comes.
// They used to take every api.max_concurrent slot before the caller was
// even identified; now they are refused (403) before their body is read,
// and root, whose rule allows it, is served throughout.
func TestNoRuleFloodDoesNotStarveRunner(t *testing.T) {
	group, _ := localsocktest.NewGroup(t)
	flooder := localsocktest.NewUser(t, group)
	h := start(t, setup{cfg: localapi.Config{Limits: localapi.Limits{MaxConcurrent: 2}, Timeouts: localapi.Timeouts{ReadTimeout: 10 * time.Second}}, listen: groupSocket(group)})
	report, release := holdAs(t, flooder, h.path, "slow:20")
	defer release()
	if !strings.Contains(report, "answered=20") {
		t.Errorf("flooder: %s; want each slow request answered at once", report)
	}
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := h.client.Resolve(ctx, "r", "f", "sap")
		cancel()
		if err != nil {
			t.Fatalf("root during the flood: %v", err)
		}
		res.Wipe()
	}
	release()
	var refused int
	for _, r := range h.auditRecords(t) {
		if r["outcome"] == "refused" {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d full audit records of refusals, want 1 (the rest summed up)", refused)
	}
}

// TestStatusAsUser asks /v1/status as a runner whose rule grants "sap" and
// as a group member with no rule: neither sees stores, applications or
// names its rule does not grant.
func TestStatusAsUser(t *testing.T) {
	group, _ := localsocktest.NewGroup(t)
	runnerU := localsocktest.NewUser(t, group)
	stranger := localsocktest.NewUser(t, group)
	full := &apitype.Status{
		Ready:        true,
		Stores:       []apitype.StoreStatus{{Name: "prod", AppID: "RPA", Servers: []string{"https://ccp.corp"}}},
		Applications: []apitype.ApplicationStatus{{AppID: "RPA", Serial: "0a0b"}},
		Credentials:  []apitype.CredentialStatus{{Name: "db", Store: "prod"}, {Name: "sap", Store: "prod"}},
	}
	pol := &resolve.Policy{Rules: []resolve.Rule{{Name: "runner", UIDs: []uint32{runnerU.UID}, Credentials: []string{"sap"}}}}
	h := start(t, setup{listen: groupSocket(group), policy: pol, status: full})
	for _, tt := range []struct {
		u    localsocktest.User
		want string
	}{{runnerU, "[sap]"}, {stranger, "[]"}} {
		out, err := localsocktest.CommandAs(t, tt.u, []string{childEnv + "=status", childSockEnv + "=" + h.path}, "-test.run=^$").Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", tt.u.Name, err, out)
		}
		var st apitype.Status
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("%s: %s", tt.u.Name, out)
		}
		names := []string{}
		for _, c := range st.Credentials {
			names = append(names, c.Name)
		}
		if fmt.Sprint(names) != tt.want || !st.Limited || !st.Ready || len(st.Stores)+len(st.Applications) != 0 || strings.Contains(string(out), "ccp.corp") {
			t.Errorf("%s sees %s; want only the names %s and the health", tt.u.Name, out, tt.want)
		}
	}
	// Root sees it all.
	st, err := h.client.Status(context.Background())
	if err != nil || st.Limited || len(st.Stores) != 1 || len(st.Credentials) != 2 {
		t.Errorf("root's view: %+v, %v", st, err)
	}
}
