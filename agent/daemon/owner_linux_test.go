package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/logging"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// Environment of the runner child that TestOwnersOnSharedMachine starts as
// another user.
const (
	ownerChildSocket = "CREDAGENT_OWNER_CHILD_SOCKET"
	ownerChildName   = "CREDAGENT_OWNER_CHILD_NAME"
)

// ownerChildResult is what the runner child prints, on one line.
type ownerChildResult struct {
	Username string `json:"username,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Class    string `json:"class,omitempty"`
}

// TestOwnerRunnerChild is the runner: it runs only as the child of
// TestOwnersOnSharedMachine, as another OS user, resolves one name through
// the socket and prints the outcome (a hash of the password, never the
// password).
func TestOwnerRunnerChild(t *testing.T) {
	sock := os.Getenv(ownerChildSocket)
	if sock == "" {
		t.Skip("only as the child of TestOwnersOnSharedMachine")
	}
	c := client.New(sock)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := os.Getenv(ownerChildName)
	var out ownerChildResult
	res, err := c.Resolve(ctx, "run-owner", "flow-owner", name)
	switch {
	case err != nil:
		if out.Class = string(apitype.ClassOf(err)); out.Class == "" {
			t.Fatal(err)
		}
	case res.Get(name) != nil && res.Get(name).Err != nil:
		out.Class = string(res.Get(name).Err.Class)
	default:
		cr := res.Get(name)
		sum := sha256.Sum256(cr.Password.Reveal())
		out.Username, out.SHA256 = cr.Username, hex.EncodeToString(sum[:])
		res.Wipe()
	}
	b, _ := json.Marshal(out)
	fmt.Printf("OWNER-CHILD %s\n", b)
}

// TestOwnersOnSharedMachine is the shared machine of delivery SPEC section
// 8, end to end: one agent, two owners who both deliver the AppID DemoApp
// (each with its own certificate), a store "vault" and a credential
// "legacy-db"; two runners, each its own OS user whose policy rule names
// one owner. Each runner gets only its owner's account, fetched with its
// owner's certificate (the fake CCP records the client certificate of
// every request), and neither reaches the other's credential.
func TestOwnersOnSharedMachine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the runners as two other users")
	}
	const userA, userB = localsocktest.Nobody, localsocktest.Nobody - 1 // both in group nogroup (65534)
	root := t.TempDir()
	pki := devPKI(t, root)
	// Owner B's own certificate for the same AppID, which CCP also
	// authorises (as a second serial on DemoApp).
	certB, err := pki.MintClientCert(fakeccp.ClientCertOptions{CommonName: "DemoApp"})
	if err != nil {
		t.Fatal(err)
	}
	serialA, serialB := strings.ToLower(pki.App.Leaf.SerialNumber.Text(16)), strings.ToLower(certB.Leaf.SerialNumber.Text(16))
	fixYAML, err := fakeccp.RenderDevFixture(pki.AppSerial)
	if err != nil {
		t.Fatal(err)
	}
	fixYAML = bytes.Replace(fixYAML, []byte(`["`+pki.AppSerial+`"]`), []byte(`["`+pki.AppSerial+`", "`+serialB+`"]`), 1)
	fix, err := fakeccp.ParseFixture("fixture.yaml", fixYAML)
	if err != nil {
		t.Fatal(err)
	}
	srv := startCCP(t, pki, fix)

	// The agent as installed (not dev mode, whose socket admits only its
	// own user): socket group nogroup, and one rule per runner user.
	dir := filepath.Join(root, "agent")
	cfg, err := daemon.DevConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Paths.Socket = filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock")
	cfg.API.SocketGroup = "nogroup"
	cfg.Log.Format, cfg.Log.Level = "json", "debug"
	cfg.Log.File, cfg.Log.AuditFile = filepath.Join(dir, "agent.log"), filepath.Join(dir, "audit.log")
	cfg.Policy.Rules = []config.Rule{
		{Name: "runner-a", UIDs: []uint32{userA}, Credentials: []string{"*"}, Owners: []string{"team-a"}},
		{Name: "runner-b", UIDs: []uint32{userB}, Credentials: []string{"*"}, Owners: []string{"team-b"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs, err := logging.New(daemon.LogOptions(cfg), os.Stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	a := &agentRun{dir: dir, cfg: cfg, events: make(chan inbox.Event, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			Config: cfg, Log: logs.Log, Audit: logs.Audit, SkipHardening: true,
			Ready:   func() { once.Do(func() { close(ready) }) },
			OnEvent: func(e inbox.Event) { a.events <- e },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}

	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	p12B, err := fakeccp.EncodeP12(certB, nil, fakeccp.DevP12Password)
	if err != nil {
		t.Fatal(err)
	}
	p12A, err := os.ReadFile(pki.AppP12File)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		owner, object string
		p12           []byte
	}{
		{"team-a", "sap-prod-admin", p12A},
		{"team-b", "Operating System-WinDomain-example.internal-rpa01", p12B},
	} {
		p := &portalSide{t: t, agent: a, pki: pki, owner: o.owner}
		pfx, err := portal.OpenPFX(o.p12, secret.FromString(fakeccp.DevP12Password), time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		p.drop(delivery.KindApplication, "DemoApp", pfx.Application)
		a.waitEvent(t, delivery.KindApplication, "DemoApp")
		p.drop(delivery.KindStore, "vault", &delivery.Store{Servers: []string{srv.URL}, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: string(caPEM)})
		a.waitEvent(t, delivery.KindStore, "vault")
		p.drop(delivery.KindCredential, "legacy-db", &delivery.Credential{Store: "vault", Object: o.object})
		a.waitEvent(t, delivery.KindCredential, "legacy-db")
		if o.owner == "team-b" {
			p.drop(delivery.KindCredential, "b-only", &delivery.Credential{Store: "vault", Object: "sap-prod-admin"})
			a.waitEvent(t, delivery.KindCredential, "b-only")
		}
	}

	run := func(uid uint32, name string) ownerChildResult {
		t.Helper()
		out, err := localsocktest.RunAs(t, uid, localsocktest.Nobody,
			[]string{ownerChildSocket + "=" + cfg.Paths.Socket, ownerChildName + "=" + name}, "-test.run=^TestOwnerRunnerChild$", "-test.v")
		if err != nil {
			t.Fatalf("runner %d: %v\n%s", uid, err, out)
		}
		_, line, ok := strings.Cut(string(out), "OWNER-CHILD ")
		if !ok {
			t.Fatalf("runner %d printed no result:\n%s", uid, out)
		}
		line, _, _ = strings.Cut(line, "\n")
		var r ownerChildResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	shaOf := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

	srv.ResetAudit()
	if r := run(userA, "legacy-db"); r.Username != "svc_sap" || r.SHA256 != shaOf("Sap-Pr0d!pass") {
		t.Errorf("runner A got %+v, want team-a's account svc_sap", r)
	}
	if r := run(userB, "legacy-db"); r.Username != "rpa01" || r.SHA256 != shaOf("Rpa01-W1n!pass") {
		t.Errorf("runner B got %+v, want team-b's account rpa01", r)
	}
	if r := run(userA, "b-only"); r.Class != "unknown_credential" {
		t.Errorf("runner A reached team-b's credential: %+v", r)
	}
	recs := srv.Audit()
	if len(recs) != 2 {
		t.Fatalf("the fake CCP saw %d requests, want 2: %+v", len(recs), recs)
	}
	for _, r := range recs {
		want := map[string]string{"sap-prod-admin": serialA, "Operating System-WinDomain-example.internal-rpa01": serialB}[strings.TrimPrefix(r.Object, `RPA-Prod\Root\`)]
		if r.ClientSerial == "" || r.ClientSerial != want {
			t.Errorf("CCP request for %q came with certificate %q, want its owner's %q", r.Object, r.ClientSerial, want)
		}
	}

	st, err := client.New(cfg.Paths.Socket).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Applications) != 2 || st.Applications[0].Owner != "team-a" || st.Applications[1].Owner != "team-b" || len(st.Credentials) != 3 {
		t.Errorf("status: %+v %+v", st.Applications, st.Credentials)
	}
	scanForSecrets(t, dir, fix.Passwords(), pki)
	audit, _ := os.ReadFile(cfg.Log.AuditFile)
	if !strings.Contains(string(audit), `"owner":"team-b"`) {
		t.Errorf("the audit log names no owner:\n%s", audit)
	}
}
