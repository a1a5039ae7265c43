package daemon

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/logging"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"go.yaml.in/yaml/v3"
)

// agentLogs opens the agent's logs for base into a buffer the test reads.
func agentLogs(t *testing.T, base config.Config) (*logging.Logs, *agenttest.LockedBuffer) {
	t.Helper()
	out := &agenttest.LockedBuffer{}
	logs, err := logging.New(LogOptions(base), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	return logs, out
}

// TestReloadEveryKey runs an agent, changes every key of its config file,
// reloads, and checks each key: a live one is in effect in the running
// part that takes it, and every other one is named as waiting for a
// restart, in the reload's log line and in the status.
func TestReloadEveryKey(t *testing.T) {
	dir := t.TempDir()
	base := baseConfig(t, dir)
	logs, out := agentLogs(t, base)
	reload, reloaded := make(chan struct{}), make(chan struct{}, 1)
	a, err := newAgent(context.Background(), Options{
		Config: base, Dev: true, DevDir: dir, Log: logs.Log, Audit: logs.Audit, SetLogLevel: logs.SetLevel,
		Reload: reload, Reloaded: func() { reloaded <- struct{}{} }, KeyStore: keystore.NewMemoryStore(), SkipHardening: true,
	})
	if a != nil {
		defer a.close()
	}
	if err != nil {
		t.Fatal(err)
	}
	var built []ccp.Options // the CCP settings of each resolver built
	var builtMu sync.Mutex
	fetchers := a.fetchers
	a.fetchers = func(o ccp.Options) resolve.FetcherFactory {
		builtMu.Lock()
		built = append(built, o)
		builtMu.Unlock()
		return fetchers(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// The file changes every key (dev mode reads DIR/config.yaml over the
	// dev defaults); the agent reloads it.
	next := changedConfig(t, base, dir)
	b, err := yaml.Marshal(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if next, err = DevConfig(dir); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	select {
	case <-reloaded:
	case <-time.After(20 * time.Second):
		t.Fatal("the reload was not handled")
	}
	if strings.Contains(out.String(), "reload rejected") {
		t.Fatalf("the reload was rejected:\n%s", out.String())
	}

	live, restart, unused := reloadClasses(base, next)
	if len(unused) > 0 {
		t.Errorf("keys that reach no part: %v", unused)
	}
	want := translate(next).live
	self := selfIdentity(t)
	checks := map[string]func() bool{
		"log.level": func() bool { return logs.Level().String() == next.Log.Level },
		"policy.rules": func() bool {
			r := a.res.p.Load()
			return r.Grants(self, "", "changed-x") && !r.Grants(self, "", "sap")
		},
		"api.rate_burst": func() bool {
			// The burst is one name: the second in a row is refused.
			a.res.Resolve(context.Background(), self, resolve.Request{Names: []string{"changed-x"}, Op: resolve.OpCheck})
			res := a.res.Resolve(context.Background(), self, resolve.Request{Names: []string{"changed-x"}, Op: resolve.OpCheck})
			return res.Err != nil && res.Err.Class == apitype.ClassRateLimited
		},
		"api.rate_per_second": func() bool {
			// One token per 1000 s: the wait is minutes, not milliseconds.
			a.res.Resolve(context.Background(), self, resolve.Request{Names: []string{"changed-x"}, Op: resolve.OpCheck})
			res := a.res.Resolve(context.Background(), self, resolve.Request{Names: []string{"changed-x"}, Op: resolve.OpCheck})
			return res.Err != nil && res.Err.Class == apitype.ClassRateLimited && res.Err.RetryAfter > time.Minute
		},
		"feed.poll_interval":     func() bool { return a.fd.Schedule().Interval == next.Feed.PollInterval },
		"feed.fail_closed_after": func() bool { return a.fd.Schedule().FailClosedAfter == next.Feed.FailClosedAfter },
	}
	// Every api limit: the server's limits in force are the new ones.
	apiLimit := func() bool { return a.srv.Limits() == want.API }
	// Every ccp setting: the resolver in force was built with the new
	// ones, and the in-agent store probes use them too.
	ccpSettings := func() bool {
		builtMu.Lock()
		defer builtMu.Unlock()
		return len(built) > 0 && equalCCP(built[len(built)-1], want.CCP) && equalCCP(a.liveCCP(), want.CCP)
	}
	for _, k := range live {
		check := checks[k]
		switch {
		case check != nil:
		case strings.HasPrefix(k, "api."):
			check = apiLimit
		case strings.HasPrefix(k, "ccp."):
			check = ccpSettings
		default:
			t.Errorf("%s is applied by a reload, but this test has no check that it is in effect: add one", k)
			continue
		}
		if !check() {
			t.Errorf("%s was reloaded but is not in effect", k)
		}
	}
	if want := next.API.MaxConcurrent; a.srv.Limits().MaxConcurrent != want {
		t.Errorf("api.max_concurrent in force %d, want %d", a.srv.Limits().MaxConcurrent, want)
	}

	// Every other key is reported: in the status and the log line.
	st := a.status(context.Background())
	if !slices.Equal(st.PendingRestart, restart) {
		t.Errorf("status pending_restart %v\nwant %v", st.PendingRestart, restart)
	}
	var line struct {
		Level        string   `json:"level"`
		Message      string   `json:"message"`
		Applied      []string `json:"applied"`
		NeedsRestart []string `json:"needs_restart"`
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "configuration reloaded") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line.Level != "warn" || !slices.Equal(line.NeedsRestart, restart) || !slices.Equal(line.Applied, live) {
		t.Errorf("reload log line %+v\nwant warn, applied %v, needs_restart %v", line, live, restart)
	}
	for _, k := range restart {
		if !strings.Contains(line.Message, k) {
			t.Errorf("the reload's message does not name %s: %q", k, line.Message)
		}
	}
	if len(live)+len(restart) != len(configKeys()) {
		t.Errorf("%d live + %d restart keys, want all %d keys changed", len(live), len(restart), len(configKeys()))
	}

	// A second reload of the same file applies nothing new, and the keys
	// still wait for the restart.
	reload <- struct{}{}
	<-reloaded
	if st := a.status(context.Background()); !slices.Equal(st.PendingRestart, restart) {
		t.Errorf("after a second reload, pending_restart %v", st.PendingRestart)
	}
}

// TestReloadRejectedKeepsRunning: a config that does not load changes
// nothing in force.
func TestReloadRejectedKeepsRunning(t *testing.T) {
	dir := t.TempDir()
	base := baseConfig(t, dir)
	logs, out := agentLogs(t, base)
	a, err := newAgent(context.Background(), Options{Config: base, Dev: true, DevDir: dir, Log: logs.Log, Audit: logs.Audit,
		SetLogLevel: logs.SetLevel, KeyStore: keystore.NewMemoryStore(), SkipHardening: true})
	if a != nil {
		defer a.close()
	}
	if err != nil {
		t.Fatal(err)
	}
	before := a.srv.Limits()
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("api:\n  max_concurrent: 0\nlog:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.reload()
	if a.srv.Limits() != before || logs.Level().String() != base.Log.Level || len(a.status(context.Background()).PendingRestart) != 0 {
		t.Errorf("a rejected reload changed what is in force")
	}
	if !strings.Contains(out.String(), "reload rejected") {
		t.Errorf("no rejection logged:\n%s", out.String())
	}
}

// equalCCP compares the config-fed part of two CCP options.
func equalCCP(a, b ccp.Options) bool {
	return a.ConnectTimeout == b.ConnectTimeout && a.TLSTimeout == b.TLSTimeout && a.RequestTimeout == b.RequestTimeout &&
		a.Retries == b.Retries && a.RetryBackoff == b.RetryBackoff && a.PasswordChangeWait == b.PasswordChangeWait &&
		a.PoolSize == b.PoolSize && a.HTTP2 == b.HTTP2 && a.TLSMaxVersion == b.TLSMaxVersion
}

// selfIdentity is the identity of the user running the test, as the dev
// policy rule names it.
func selfIdentity(t *testing.T) *localsock.Identity {
	self := localsocktest.SelfIdentity(t)
	id := &localsock.Identity{Verified: true, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if runtime.GOOS == "windows" && len(self.SIDs) > 0 {
		id = &localsock.Identity{Verified: true, SID: self.SIDs[0]}
	}
	return id
}
