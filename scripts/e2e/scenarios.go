package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// loads runs `runner load` in the given agents at once.
type loads struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	res  map[int]LoadResult
	errs map[int]error
}

func (e *env) startLoad(ctx context.Context, dur time.Duration, want string, agents ...int) *loads {
	l := &loads{res: map[int]LoadResult{}, errs: map[int]error{}}
	for _, i := range agents {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var r LoadResult
			args := []string{"load", "--duration", dur.String(), "--concurrency", "4", "--pace", "20ms"}
			if want != "" {
				args = append(args, "--sha", want)
			}
			err := execJSON(ctx, e.agents[i], &r, args...)
			l.mu.Lock()
			l.res[i], l.errs[i] = r, err
			l.mu.Unlock()
		}()
	}
	return l
}

// wait returns a one-line summary and an error if any load failed more
// than allowed per agent, or returned a wrong password.
func (l *loads) wait(allowed int, agents ...int) (string, error) {
	l.wg.Wait()
	var parts []string
	var bad []string
	for _, i := range agents {
		r, err := l.res[i], l.errs[i]
		if err != nil {
			bad = append(bad, fmt.Sprintf("agent%d: %v", i+1, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("agent%d %d ok/%d failed p99 %.0fms max %.0fms", i+1, r.OK, r.Failed, r.P99MS, r.MaxMS))
		if r.Failed > allowed || r.WrongPassword > 0 || r.OK == 0 {
			bad = append(bad, fmt.Sprintf("agent%d: %d failed (allowed %d) %v, %d wrong passwords", i+1, r.Failed, allowed, r.Classes, r.WrongPassword))
		}
	}
	s := strings.Join(parts, "; ")
	if len(bad) > 0 {
		return s, fmt.Errorf("%s [%s]", strings.Join(bad, "; "), s)
	}
	return s, nil
}

func all() []int {
	out := make([]int, nAgents)
	for i := range out {
		out[i] = i
	}
	return out
}

func (e *env) scResolveAll(ctx context.Context) (string, error) {
	var took []string
	for i := range e.agents {
		for _, name := range []string{"sap", "rpa01"} {
			var r ResolveResult
			if err := execJSON(ctx, e.agents[i], &r, "resolve", "--name", name); err != nil {
				return "", err
			}
			if !r.OK {
				return "", fmt.Errorf("agent%d %s: %s %s: %s", i+1, name, r.Class, r.Code, r.Message)
			}
			want := map[string]string{"sap": e.sapSHA, "rpa01": sha("Rpa01-W1n!pass")}[name]
			if r.SHA256 != want {
				return "", fmt.Errorf("agent%d %s: wrong password", i+1, name)
			}
			took = append(took, fmt.Sprintf("%.1fms", r.TookMS))
		}
	}
	return "6 resolutions, right passwords, " + strings.Join(took, " "), nil
}

// serialsSeen returns the client certificate serials in the replicas'
// audit since since.
func (e *env) serialsSeen(ctx context.Context, since time.Time) map[string]int {
	seen := map[string]int{}
	for _, c := range e.ccps {
		b, err := e.admin(ctx, c, "GET", "/audit?limit=2000", nil)
		if err != nil {
			continue
		}
		var recs []fakeccp.AuditRecord
		json.Unmarshal(b, &recs)
		for _, r := range recs {
			if r.Time.After(since) {
				seen[r.ClientSerial]++
			}
		}
	}
	return seen
}

func (e *env) scRotateApp(ctx context.Context) (string, error) {
	l := e.startLoad(ctx, 8*time.Second, e.sapSHA, all()...)
	time.Sleep(2 * time.Second)
	rotated := time.Now()
	if err := e.deliverApp(e.app2P12); err != nil {
		return "", err
	}
	var applied []string
	for i := range e.agents {
		start := time.Now()
		if err := e.waitApplied(ctx, i, func(s *apitype.Status) bool {
			return len(s.Applications) == 1 && s.Applications[0].Serial == e.app2Serial
		}); err != nil {
			return "", err
		}
		applied = append(applied, fmt.Sprintf("%.1fs", time.Since(start).Seconds()))
	}
	sum, err := l.wait(0, all()...)
	if err != nil {
		return "", err
	}
	// After the rotation settles, only the new certificate reaches CCP.
	time.Sleep(300 * time.Millisecond)
	after := time.Now()
	for i := range e.agents {
		var r ResolveResult
		if err := execJSON(ctx, e.agents[i], &r, "resolve"); err != nil || !r.OK {
			return "", fmt.Errorf("agent%d after rotation: %v %+v", i+1, err, r)
		}
	}
	seen := e.serialsSeen(ctx, after)
	if seen[e.app2Serial] < nAgents || len(seen) != 1 {
		return "", fmt.Errorf("after the rotation CCP saw serials %v, want only the new %s", seen, e.app2Serial)
	}
	during := e.serialsSeen(ctx, rotated)
	return fmt.Sprintf("no failed resolution; new serial in use on all agents (CCP saw %d requests with it since the drop); %s", during[e.app2Serial], sum), nil
}

func (e *env) scFailover(ctx context.Context) (string, error) {
	c1 := e.ccps[0]
	l := e.startLoad(ctx, 14*time.Second, "", all()...)
	var steps []string
	stepf := func(f string, a ...any) { steps = append(steps, fmt.Sprintf(f, a...)) }
	time.Sleep(1500 * time.Millisecond)
	if _, err := docker(ctx, "stop", "-t", "1", c1); err != nil {
		return "", err
	}
	stepf("ccp1 stopped")
	time.Sleep(3 * time.Second)
	if _, err := docker(ctx, "network", "disconnect", e.net, c1); err != nil {
		return "", err
	}
	if _, err := docker(ctx, "start", c1); err != nil {
		return "", err
	}
	stepf("restarted off the network")
	time.Sleep(3 * time.Second)
	if _, err := docker(ctx, "network", "connect", "--alias", "ccp1", e.net, c1); err != nil {
		return "", err
	}
	if err := e.waitCCP(ctx, c1, 10*time.Second); err != nil {
		return "", err
	}
	stepf("reconnected")
	// Now the other way: ccp2 down, ccp1 must carry the load.
	time.Sleep(1 * time.Second)
	if _, err := docker(ctx, "stop", "-t", "1", e.ccps[1]); err != nil {
		return "", err
	}
	stepf("ccp2 stopped")
	sum, lerr := l.wait(0, all()...)
	if _, err := docker(ctx, "start", e.ccps[1]); err != nil {
		return "", err
	}
	if err := e.waitCCP(ctx, e.ccps[1], 10*time.Second); err != nil {
		return "", err
	}
	if lerr != nil {
		return "", fmt.Errorf("%s: %v", strings.Join(steps, ", "), lerr)
	}
	// ccp1 served after its restore.
	b, err := e.admin(ctx, c1, "GET", "/counters", nil)
	if err != nil {
		return "", err
	}
	var cn fakeccp.Counters
	json.Unmarshal(b, &cn)
	if cn.ByCode["OK"] == 0 {
		return "", fmt.Errorf("ccp1 answered nothing after it was restored (counters %+v)", cn)
	}
	return fmt.Sprintf("%s; restored ccp1 served %d; %s", strings.Join(steps, ", "), cn.ByCode["OK"], sum), nil
}

func (e *env) scRotatePassword(ctx context.Context) (string, error) {
	pw := randomPassword()
	e.planted = append(e.planted, pw)
	for _, c := range e.ccps {
		if _, err := e.admin(ctx, c, "POST", "/accounts/password", map[string]string{"safe": "RPA-Prod", "object": "sap-prod-admin", "password": pw}); err != nil {
			return "", err
		}
	}
	for i := range e.agents {
		var r ResolveResult
		if err := execJSON(ctx, e.agents[i], &r, "resolve"); err != nil {
			return "", err
		}
		if !r.OK || r.SHA256 != sha(pw) {
			return "", fmt.Errorf("agent%d: the next resolve after the rotation did not return the new password (ok %v class %s)", i+1, r.OK, r.Class)
		}
	}
	e.sapSHA = sha(pw)
	return "the first resolve after the change returned the new password on every agent (no cache configured)", nil
}

func (e *env) setFaults(ctx context.Context, f map[string]any) error {
	for _, c := range e.ccps {
		var err error
		if f == nil {
			_, err = e.admin(ctx, c, "DELETE", "/faults", nil)
		} else {
			_, err = e.admin(ctx, c, "PUT", "/faults", f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *env) scSlow5xx(ctx context.Context) (string, error) {
	defer e.setFaults(context.Background(), nil)
	var parts []string
	for _, tc := range []struct {
		name   string
		faults map[string]any
		class  string
		min    time.Duration
		max    time.Duration
	}{
		{"slow (5 s)", map[string]any{"latency": "5s"}, "timeout", time.Second, slowBound},
		{"503", map[string]any{"status": 503}, "server_error", 0, 3 * time.Second},
	} {
		if err := e.setFaults(ctx, tc.faults); err != nil {
			return "", err
		}
		var r ResolveResult
		if err := execJSON(ctx, e.agents[0], &r, "resolve"); err != nil {
			return "", err
		}
		took := time.Duration(r.TookMS * float64(time.Millisecond))
		if r.OK || r.Class != tc.class {
			return "", fmt.Errorf("%s: ok %v class %q code %q, want class %q", tc.name, r.OK, r.Class, r.Code, tc.class)
		}
		if took < tc.min || took > tc.max {
			return "", fmt.Errorf("%s: answered in %v, want between %v and %v", tc.name, took, tc.min, tc.max)
		}
		parts = append(parts, fmt.Sprintf("%s -> %s in %v (bound %v)", tc.name, r.Class, took.Round(time.Millisecond), tc.max))
	}
	if err := e.setFaults(ctx, nil); err != nil {
		return "", err
	}
	var r ResolveResult
	if err := execJSON(ctx, e.agents[0], &r, "resolve"); err != nil || !r.OK {
		return "", fmt.Errorf("after clearing the faults: %v %+v", err, r)
	}
	return strings.Join(parts, "; ") + "; served again once cleared", nil
}

func (e *env) scBadDelivery(ctx context.Context) (string, error) {
	const i = 1 // agent2
	before, err := e.status(ctx, i)
	if err != nil {
		return "", err
	}
	// A store delivery with one payload byte flipped.
	good := e.work + "/out/store-bad.delivery"
	if _, err := e.sh("credseal", "store", "--group", group, "--name", storeName, "--server", "https://nowhere.invalid:8443",
		"--app-id", "DemoApp", "--ca-bundle", e.pki.CAFile, "--sign", e.portalKey, "--out", good); err != nil {
		return "", err
	}
	if err := flipPayloadByte(good); err != nil {
		return "", err
	}
	// A credential signed by a key the agent does not trust.
	rogue := e.work + "/portal/rogue"
	if _, err := e.sh("credseal", "keygen", "--out", rogue); err != nil {
		return "", err
	}
	cred := e.work + "/out/cred-rogue.delivery"
	if _, err := e.sh("credseal", "credential", "--name", "sap", "--store", storeName, "--object", "hr-admin", "--to", e.regs[i], "--sign", rogue+".key", "--out", cred); err != nil {
		return "", err
	}
	if err := e.drop(i, good, "corrupt.delivery"); err != nil {
		return "", err
	}
	if err := e.drop(i, cred, "rogue.delivery"); err != nil {
		return "", err
	}
	deadline := time.Now().Add(applyTimeout)
	var st *apitype.Status
	for {
		st, err = e.status(ctx, i)
		if err == nil && len(st.Rejected) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the bad deliveries were not both rejected within %v: %+v", applyTimeout, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var reasons []string
	for _, r := range st.Rejected {
		if r.Reason == "" {
			return "", fmt.Errorf("rejection of %s has no reason", r.File)
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s", r.File, r.Reason))
	}
	if fmt.Sprint(st.Stores) != fmt.Sprint(before.Stores[:1]) && st.Stores[0].Servers[0] != before.Stores[0].Servers[0] {
		return "", fmt.Errorf("the store changed: %+v", st.Stores)
	}
	if len(st.Credentials) != len(before.Credentials) || len(st.Applications) != 1 || !st.Ready {
		return "", fmt.Errorf("state changed: %+v", st)
	}
	var r ResolveResult
	if err := execJSON(ctx, e.agents[i], &r, "resolve"); err != nil || !r.OK || r.SHA256 != e.sapSHA {
		return "", fmt.Errorf("agent2 no longer serves the right password: %v %+v", err, r)
	}
	return "rejected with reasons in status (" + strings.Join(reasons, "; ") + "); last good state serves", nil
}

func flipPayloadByte(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := strings.Index(string(b), "\n\n")
	if i < 0 || i+10 >= len(b) {
		return fmt.Errorf("%s: no payload", path)
	}
	b[i+10] ^= 0x20
	return os.WriteFile(path, b, 0o600)
}

func (e *env) scKillRestart(ctx context.Context) (string, error) {
	const i = 1
	before, err := e.status(ctx, i)
	if err != nil {
		return "", err
	}
	others := []int{0, 2}
	l := e.startLoad(ctx, 6*time.Second, e.sapSHA, others...)
	victim := e.startLoad(ctx, 6*time.Second, e.sapSHA, i)
	time.Sleep(1500 * time.Millisecond)
	if _, err := docker(ctx, "kill", e.agents[i]); err != nil {
		return "", err
	}
	victim.wg.Wait() // its exec died with it
	if _, err := docker(ctx, "start", e.agents[i]); err != nil {
		return "", err
	}
	var w WaitResult
	if err := execJSON(ctx, e.agents[i], &w, "wait-serve", "--timeout", "10s"); err != nil {
		return "", err
	}
	started, err := startedAt(ctx, e.agents[i])
	if err != nil {
		return "", err
	}
	serve := time.Unix(0, w.FirstOKUnixNano).Sub(started)
	after, err := e.status(ctx, i)
	if err != nil {
		return "", err
	}
	sum, lerr := l.wait(0, others...)
	if lerr != nil {
		return "", lerr
	}
	if after.KeyStore.KeyID != before.KeyStore.KeyID || len(after.Credentials) != len(before.Credentials) ||
		len(after.Applications) != 1 || after.Applications[0].Serial != before.Applications[0].Serial || !after.Ready {
		return "", fmt.Errorf("state not kept across the kill: before %+v after %+v", before, after)
	}
	if serve > serveWithin {
		return "", fmt.Errorf("first resolution %v after the process started, want < %v", serve, serveWithin)
	}
	return fmt.Sprintf("served %v after start (%d attempts), same key, application and credentials; others under load: %s", serve.Round(time.Millisecond), w.Attempts, sum), nil
}
