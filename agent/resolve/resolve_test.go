package resolve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/logfile"
	"github.com/rs/zerolog"
)

// planted is a password that must never show up in a log.
const planted = agenttest.Planted

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testState has credentials sap, gone, db (in another safe), lost-store
// (its store was never delivered) and no-app (its store's application was
// never delivered).
func testState() *state.State {
	s := agenttest.Snapshot("sap", "gone")
	s.Stores["prod"].Folder = "Root"
	s.Stores["orphan"] = &state.Store{Name: "orphan", AppID: "NoSuchApp", Seq: 1}
	s.Credentials["db"] = &state.Credential{Name: "db", Store: "prod", Safe: "DB-Safe", Object: "db", Seq: 1}
	s.Credentials["lost-store"] = &state.Credential{Name: "lost-store", Store: "nowhere", Object: "x", Seq: 1}
	s.Credentials["no-app"] = &state.Credential{Name: "no-app", Store: "orphan", Object: "x", Seq: 1}
	return agenttest.Publish(s)
}

var runner = &localsock.Identity{Verified: true, UID: 1000, GID: 1000, Groups: []uint32{1000, 2000}, Username: "runner", PID: 4242, Exe: "/opt/runner/bin/runner"}

var testPolicy = resolve.Policy{Rules: []resolve.Rule{
	{Name: "runner", UIDs: []uint32{1000}, Credentials: []string{"sap", "db", "gone", "lost-store", "no-app"}},
	{Name: "ops-check-only", Groups: []string{"ops"}, Credentials: []string{"*"}, Operations: []string{"check"}},
}}

type env struct {
	r     *resolve.Resolver
	ccp   *agenttest.Fetcher
	st    *state.State
	clock *clock
	audit *agenttest.LockedBuffer
	log   *agenttest.LockedBuffer
	made  *int
}

func newEnv(t *testing.T, mod func(o *resolve.Options)) *env {
	t.Helper()
	e := &env{
		ccp:   agenttest.NewFetcher(map[string]string{"sap": planted, "db": planted + "db"}),
		st:    testState(),
		clock: &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		audit: &agenttest.LockedBuffer{}, log: &agenttest.LockedBuffer{},
		made: new(int),
	}
	var mu sync.Mutex
	opts := resolve.Options{
		State: e.st,
		NewFetcher: func(*state.Store, *state.Application) (resolve.Fetcher, error) {
			mu.Lock()
			*e.made++
			mu.Unlock()
			return e.ccp, nil
		},
		Policy: testPolicy,
		Audit:  zerolog.New(e.audit),
		Log:    zerolog.New(e.log),
		Now:    e.clock.now,
		LookupGroup: func(name string) (string, error) {
			if name == "ops" {
				return "2000", nil
			}
			return "", errors.New("unknown group")
		},
	}
	if mod != nil {
		mod(&opts)
	}
	r, err := resolve.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	t.Cleanup(func() {
		r.Close()
		needles := agenttest.Needles(t, nil, planted, planted+"db")
		agenttest.NoSecrets(t, "the audit", e.audit.Bytes(), needles)
		agenttest.NoSecrets(t, "the log", e.log.Bytes(), needles)
	})
	return e
}

func (e *env) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(e.audit.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestPolicy(t *testing.T) {
	win := &localsock.Identity{Verified: true, SID: "S-1-5-21-1-2-3-1001", GroupSIDs: []string{"S-1-5-32-545"}, Username: `CORP\bot`, PID: 7, Exe: `C:\Runner\runner.exe`}
	tests := []struct {
		name     string
		rules    []resolve.Rule
		caller   *localsock.Identity
		op       resolve.Op
		names    []string
		wantRule string // "" with wantOK false: no rule matched
		wantOK   bool
	}{
		{"uid grants", nil, runner, resolve.OpResolve, []string{"sap"}, "", true},
		{"uid does not grant name", nil, runner, resolve.OpResolve, []string{"sap", "secret-hr"}, "runner", false},
		{"no rule", nil, &localsock.Identity{Verified: true, UID: 1001, GID: 1001}, resolve.OpResolve, []string{"sap"}, "", false},
		{"group check ok", nil, &localsock.Identity{Verified: true, UID: 1500, GID: 100, Groups: []uint32{2000}}, resolve.OpCheck, []string{"anything"}, "", true},
		{"group resolve refused by op", nil, &localsock.Identity{Verified: true, UID: 1500, GID: 2000}, resolve.OpResolve, []string{"sap"}, "ops-check-only", false},
		{"exe must match", []resolve.Rule{{Name: "exe", UIDs: []uint32{1000}, Executables: []string{"/usr/bin/other"}, Credentials: []string{"*"}}}, runner, resolve.OpResolve, []string{"sap"}, "", false},
		{"exe matches", []resolve.Rule{{Name: "exe", UIDs: []uint32{1000}, Executables: []string{"/opt/runner/bin/../bin/runner"}, Credentials: []string{"*"}}}, runner, resolve.OpResolve, []string{"sap"}, "", true},
		{"unknown exe fails closed", []resolve.Rule{{Name: "exe", Executables: []string{"/x"}, Credentials: []string{"*"}}}, &localsock.Identity{Verified: true, UID: 1000}, resolve.OpResolve, []string{"sap"}, "", false},
		// The zero Identity has UID 0, which must not read as root's.
		{"zero identity matches no uid-0 rule", []resolve.Rule{{Name: "root", UIDs: []uint32{0}, Credentials: []string{"*"}}}, &localsock.Identity{}, resolve.OpResolve, []string{"sap"}, "", false},
		{"unverified identity matches nothing", []resolve.Rule{{Name: "r", UIDs: []uint32{1000}, Credentials: []string{"*"}}}, &localsock.Identity{UID: 1000, GID: 1000}, resolve.OpResolve, []string{"sap"}, "", false},
		// An executables-only rule (refused by config validation) would
		// match any user who runs the binary.
		{"executables-only rule matches nobody", []resolve.Rule{{Name: "exe", Executables: []string{"/opt/runner/bin/runner"}, Credentials: []string{"*"}}}, runner, resolve.OpResolve, []string{"sap"}, "", false},
		{"prefix grant", []resolve.Rule{{Name: "p", Users: []string{"runner"}, Credentials: []string{"sa*"}}}, runner, resolve.OpResolve, []string{"sap"}, "", true},
		{"first match decides", []resolve.Rule{{Name: "narrow", UIDs: []uint32{1000}, Credentials: []string{"db"}}, {Name: "wide", UIDs: []uint32{1000}, Credentials: []string{"*"}}}, runner, resolve.OpResolve, []string{"sap"}, "narrow", false},
		{"unknown group fails closed", []resolve.Rule{{Name: "g", Groups: []string{"nope"}, Credentials: []string{"*"}}}, runner, resolve.OpResolve, []string{"sap"}, "", false},
		{"uid 0 rule never matches a Windows caller", []resolve.Rule{{Name: "root", UIDs: []uint32{0}, Credentials: []string{"*"}}}, win, resolve.OpResolve, []string{"sap"}, "", false},
		{"sid via group", []resolve.Rule{{Name: "users", SIDs: []string{"s-1-5-32-545"}, Credentials: []string{"*"}}}, win, resolve.OpResolve, []string{"sap"}, "", true},
		{"windows user name, any case", []resolve.Rule{{Name: "u", Users: []string{`corp\BOT`}, SIDs: []string{"S-1-5-21-1-2-3-1001"}, Credentials: []string{"*"}}}, win, resolve.OpResolve, []string{"sap"}, "", windowsOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *resolve.Options) {
				if tt.rules != nil {
					o.Policy = resolve.Policy{Rules: tt.rules}
				}
			})
			res := e.r.Resolve(context.Background(), tt.caller, resolve.Request{RunID: "run-1", Names: tt.names, Op: tt.op})
			defer res.Wipe()
			if tt.wantOK {
				if res.Err != nil && res.Err.Class == apitype.ClassForbidden {
					t.Fatalf("refused: %v", res.Err)
				}
				return
			}
			if res.Err == nil || !apitype.IsForbidden(res.Err) {
				t.Fatalf("not refused: %+v", res)
			}
			if res.Err.Rule != tt.wantRule {
				t.Errorf("rule = %q, want %q", res.Err.Rule, tt.wantRule)
			}
			if tt.wantRule == "" && !strings.Contains(res.Err.Message, "no rule matched") {
				t.Errorf("message %q does not say no rule matched", res.Err.Message)
			}
			if tt.wantRule != "" && !strings.Contains(res.Err.Message, tt.wantRule) {
				t.Errorf("message %q does not name the rule", res.Err.Message)
			}
			if e.ccp.Calls() != 0 {
				t.Errorf("CCP called %d times for a refused request", e.ccp.Calls())
			}
			recs := e.records(t)
			if len(recs) != len(tt.names) {
				t.Fatalf("%d audit records, want %d", len(recs), len(tt.names))
			}
			for _, r := range recs {
				if r["outcome"] != "refused" || r["error_class"] != "forbidden" {
					t.Errorf("audit record %v", r)
				}
			}
		})
	}
}

func TestResolvePartial(t *testing.T) {
	e := newEnv(t, nil)
	names := []string{"sap", "db", "gone", "lost-store", "no-app"}
	res := e.r.Resolve(context.Background(), runner, resolve.Request{RunID: "run&42;x", FlowID: "flow-7", Names: names})
	defer res.Wipe()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := []struct {
		class apitype.Class
		user  string
	}{
		{"", "svc_sap"}, {"", "svc_db"}, {apitype.ClassNotFound, ""}, {apitype.ClassStoreMisconfigured, ""}, {apitype.ClassAppCertUnreadable, ""},
	}
	for i, w := range want {
		it := res.Items[i]
		if it.Name != names[i] {
			t.Errorf("item %d is %q", i, it.Name)
		}
		if w.class == "" {
			if it.Err != nil || it.Account.UserName() != w.user || it.FromCache {
				t.Errorf("%s: %+v %v", it.Name, it.Account, it.Err)
			}
			continue
		}
		if it.Err == nil || it.Err.Class != w.class {
			t.Errorf("%s: err %v, want class %s", it.Name, it.Err, w.class)
		}
	}
	if got := res.Items[0].Account.Content.RevealString(); got != planted {
		t.Errorf("password %q", got)
	}
	res.Wipe()
	if !bytes.Equal(res.Items[0].Account.Content.Reveal(), make([]byte, len(planted))) {
		t.Error("Wipe left the password")
	}
	for _, r := range e.ccp.Reasons() {
		if r != "run_42_x" {
			t.Errorf("Reason sent to CCP = %q", r)
		}
	}

	recs := e.records(t)
	if len(recs) != len(names) {
		t.Fatalf("%d audit records, want %d", len(recs), len(names))
	}
	byName := map[string]map[string]any{}
	for _, r := range recs {
		byName[r["credential"].(string)] = r
	}
	ok := byName["sap"]
	for k, v := range map[string]any{
		"outcome": "ok", "op": "resolve", "caller_uid": 1000.0, "caller_pid": 4242.0, "caller_exe": "/opt/runner/bin/runner",
		"run_id": "run&42;x", "flow_id": "flow-7", "store": "prod", "app_id": "RPA", "safe": "RPA-Safe", "object": "sap",
		"ccp_server": "https://ccp.test", "correlation_id": "corr-sap", "from_cache": false,
	} {
		if ok[k] != v {
			t.Errorf("ok record %s = %v, want %v", k, ok[k], v)
		}
	}
	if _, has := ok["time"]; !has {
		t.Error("no time")
	}
	if _, has := ok["latency_ms"]; !has {
		t.Error("no latency")
	}
	if byName["db"]["safe"] != "DB-Safe" {
		t.Errorf("credential safe override not used: %v", byName["db"])
	}
	nf := byName["gone"]
	if nf["outcome"] != "error" || nf["error_class"] != "not_found" || nf["error_code"] != "APPAP004E" || nf["correlation_id"] != "corr-nf" {
		t.Errorf("not-found record %v", nf)
	}
	if byName["lost-store"]["error_class"] != "store_misconfigured" {
		t.Errorf("lost-store record %v", byName["lost-store"])
	}
	if h := e.r.Health()["prod"]; h.LastSuccess.IsZero() {
		t.Errorf("health %+v", h)
	}
}

func TestUnknownCredential(t *testing.T) {
	e := newEnv(t, func(o *resolve.Options) {
		o.Policy = resolve.Policy{Rules: []resolve.Rule{{Name: "all", UIDs: []uint32{1000}, Credentials: []string{"*"}}}}
	})
	res := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"nope"}})
	if res.Items[0].Err == nil || res.Items[0].Err.Class != apitype.ClassUnknownCredential {
		t.Fatalf("%+v", res.Items[0])
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(o *resolve.Options) { o.RatePerSecond, o.RateBurst = 1, 2 })
	call := func(id *localsock.Identity, names ...string) resolve.Result {
		r := e.r.Resolve(context.Background(), id, resolve.Request{Names: names})
		r.Wipe()
		return r
	}
	if r := call(runner, "sap", "db"); r.Err != nil {
		t.Fatal(r.Err)
	}
	calls := e.ccp.Calls()
	r := call(runner, "sap")
	if !apitype.IsRateLimited(r.Err) || r.Err.RetryAfter <= 0 || r.Err.RetryAfter > time.Second {
		t.Fatalf("third name: %+v", r.Err)
	}
	if e.ccp.Calls() != calls {
		t.Error("CCP called for a rate-limited request")
	}
	// A refused request, too, is counted against its caller first.
	stranger := &localsock.Identity{Verified: true, UID: 5, GID: 5}
	call(stranger, "sap")
	call(stranger, "sap")
	if r := call(stranger, "sap"); !apitype.IsRateLimited(r.Err) {
		t.Errorf("stranger: %+v", r.Err)
	}
	// Another caller is not affected, and time refills the bucket.
	e.clock.add(time.Second)
	if r := call(runner, "sap"); r.Err != nil {
		t.Errorf("after a second: %v", r.Err)
	}
	last := e.records(t)
	found := false
	for _, rec := range last {
		if rec["error_class"] == "rate_limited" && rec["outcome"] == "refused" {
			found = true
		}
	}
	if !found {
		t.Error("no audit record for the rate-limited request")
	}
}

func TestFetcherRebuilt(t *testing.T) {
	e := newEnv(t, nil)
	do := func() {
		r := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap", "db"}})
		r.Wipe()
	}
	do()
	do()
	if *e.made != 1 {
		t.Fatalf("factory called %d times, want 1", *e.made)
	}
	e.st.Update(func(s *state.Snapshot) {
		st := *s.Stores["prod"]
		st.Seq = 2
		s.Stores["prod"] = &st
	})
	do()
	if *e.made != 2 {
		t.Fatalf("after a store update: factory called %d times, want 2", *e.made)
	}
	e.st.Update(func(s *state.Snapshot) {
		a := *s.Applications["RPA"]
		a.Fingerprint = "fp2"
		s.Applications["RPA"] = &a
	})
	do()
	do()
	if *e.made != 3 {
		t.Fatalf("after a new certificate: factory called %d times, want 3", *e.made)
	}
}

func TestCache(t *testing.T) {
	e := newEnv(t, nil)
	e.st.Update(func(s *state.Snapshot) {
		st := *s.Stores["prod"]
		st.CacheTTL, st.CacheMaxStale = 10*time.Second, time.Minute
		s.Stores["prod"] = &st
	})
	get := func(op resolve.Op) resolve.Item {
		r := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap"}, Op: op})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		it := r.Items[0]
		if it.Account != nil {
			if it.Account.Content.RevealString() != planted {
				t.Errorf("cached password is %q", it.Account.Content.RevealString())
			}
			r.Wipe() // must not reach the cache's copy
		}
		return it
	}
	steps := []struct {
		advance   time.Duration
		down      bool
		op        resolve.Op
		wantCache bool
		wantStale bool
		wantAge   time.Duration
		wantErr   apitype.Class
		wantCalls int
	}{
		{0, false, resolve.OpResolve, false, false, 0, "", 1},
		{4 * time.Second, false, resolve.OpResolve, true, false, 4 * time.Second, "", 1},
		{0, false, resolve.OpCheck, false, false, 0, "", 2}, // check always asks CCP
		{7 * time.Second, false, resolve.OpResolve, false, false, 0, "", 3},
		{20 * time.Second, true, resolve.OpResolve, true, true, 20 * time.Second, "", 4},
		{41 * time.Second, true, resolve.OpResolve, false, false, 0, apitype.ClassVaultUnreachable, 5},
	}
	for i, s := range steps {
		e.clock.add(s.advance)
		e.ccp.SetDown(s.down)
		it := get(s.op)
		if it.FromCache != s.wantCache || it.Stale != s.wantStale || it.CacheAge != s.wantAge {
			t.Errorf("step %d: from_cache=%v stale=%v age=%v", i, it.FromCache, it.Stale, it.CacheAge)
		}
		if (it.Err == nil) != (s.wantErr == "") || (it.Err != nil && it.Err.Class != s.wantErr) {
			t.Errorf("step %d: err %v, want %q", i, it.Err, s.wantErr)
		}
		if e.ccp.Calls() != s.wantCalls {
			t.Errorf("step %d: %d CCP calls, want %d", i, e.ccp.Calls(), s.wantCalls)
		}
	}
	recs := e.records(t)
	stale := recs[4]
	if stale["from_cache"] != true || stale["stale"] != true || stale["cache_age_ms"] != 20000.0 || stale["error_class"] != "vault_unreachable" {
		t.Errorf("stale record %v", stale)
	}
	if h := e.r.Health()["prod"]; h.LastErrorClass != apitype.ClassVaultUnreachable {
		t.Errorf("health %+v", h)
	}
}

func TestCacheOffByDefault(t *testing.T) {
	e := newEnv(t, nil)
	for range 3 {
		r := e.r.Resolve(context.Background(), runner, resolve.Request{Names: []string{"sap"}})
		if r.Items[0].FromCache {
			t.Fatal("served from cache without opt-in")
		}
		r.Wipe()
	}
	if e.ccp.Calls() != 3 {
		t.Errorf("%d CCP calls, want 3", e.ccp.Calls())
	}
}

func TestSanitizeReason(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "credagent",
		"run-42":                  "run-42",
		"a&b+c%d;e=f/g\\h\n":      "a_b_c_d_e_f_g_h_",
		"  ":                      "credagent",
		"flow:1@host.x":           "flow:1@host.x",
		strings.Repeat("x", 300):  strings.Repeat("x", 128),
		"ünï":                     "_n_",
		fmt.Sprint("run\x00null"): "run_null",
	} {
		if got := resolve.SanitizeReason(in); got != want {
			t.Errorf("SanitizeReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRefusalFloodKeepsReleases floods the audit trail with refusals of one
// caller, written to a small rotated audit file, and checks that the record
// of an earlier release is still there: the refusals are recorded in full
// once per window and otherwise counted, while every release is recorded.
func TestRefusalFloodKeepsReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	lf, err := logfile.Open(path, logfile.Options{MaxBytes: 64 << 10, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	e := newEnv(t, func(o *resolve.Options) { o.Audit = zerolog.New(lf) })
	res := e.r.Resolve(context.Background(), runner, resolve.Request{RunID: "the-release", Names: []string{"sap"}})
	res.Wipe()
	if res.Err != nil || res.Items[0].Err != nil {
		t.Fatalf("release: %+v", res)
	}
	stranger := &localsock.Identity{Verified: true, UID: 5, GID: 5, Username: "stranger"}
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	const flood = 2000 // about 6 MB of audit if each name were recorded
	for i := range flood {
		if i%500 == 0 { // releases go on during the flood, each recorded
			r := e.r.Resolve(context.Background(), runner, resolve.Request{RunID: "during", Names: []string{"db"}})
			r.Wipe()
		}
		r := e.r.Resolve(context.Background(), stranger, resolve.Request{RunID: "flood", Names: names})
		if !apitype.IsForbidden(r.Err) {
			t.Fatalf("stranger not refused: %+v", r)
		}
		if a := e.r.Admit(stranger, resolve.OpResolve); a == nil || a.Class != apitype.ClassForbidden {
			t.Fatalf("Admit(stranger) = %v", a)
		}
	}
	e.r.Close() // writes the window's summary
	var recs []map[string]any
	for _, p := range []string{path + ".1", path} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			recs = append(recs, m)
		}
	}
	release, during, full, summaries := 0, 0, 0, 0
	for _, m := range recs {
		switch {
		case m["outcome"] == "ok" && m["run_id"] == "the-release":
			release++
		case m["outcome"] == "ok" && m["run_id"] == "during":
			during++
		case m["event"] == "resolution" && m["outcome"] == "refused":
			full++
		case m["event"] == "refusals":
			summaries++
			if m["caller_uid"] != float64(5) || m["refused_requests"] != float64(2*flood-1) || m["refused_names"] != float64((flood-1)*len(names)) {
				t.Errorf("summary %v: want %d requests and %d names of uid 5", m, 2*flood-1, (flood-1)*len(names))
			}
			if c, _ := m["classes"].(map[string]any); c["forbidden"] != float64(2*flood-1) {
				t.Errorf("summary classes %v", m["classes"])
			}
		}
	}
	if release != 1 {
		t.Fatalf("the release record was pushed out of the audit files by %d refused requests (%d records left)", flood, len(recs))
	}
	if during != flood/500 {
		t.Errorf("%d releases recorded during the flood, want %d", during, flood/500)
	}
	if full != len(names) || summaries != 1 {
		t.Errorf("%d full refusal records and %d summaries; want %d (the first request, one per name) and 1", full, summaries, len(names))
	}
}

// TestRefusalWindowRolls checks that a caller's refusals are recorded in
// full again once its window is over, with the summary of the last window.
func TestRefusalWindowRolls(t *testing.T) {
	e := newEnv(t, func(o *resolve.Options) { o.RefusalWindow = time.Minute })
	stranger := &localsock.Identity{Verified: true, UID: 5, GID: 5}
	refuse := func() { e.r.Resolve(context.Background(), stranger, resolve.Request{Names: []string{"sap"}}) }
	refuse()
	refuse()
	refuse()
	e.clock.add(time.Minute)
	refuse()
	var full, summed int
	for _, m := range e.records(t) {
		switch m["event"] {
		case "resolution":
			full++
		case "refusals":
			summed++
			if m["refused_requests"] != float64(2) {
				t.Errorf("summary %v, want 2 requests", m)
			}
		}
	}
	if full != 2 || summed != 1 {
		t.Fatalf("%d full records and %d summaries, want 2 and 1", full, summed)
	}
}
