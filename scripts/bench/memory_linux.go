package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/procs"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// childCCP is the baseline of the password counts: agent/ccp alone, built
// as the agent builds it, in a process of its own. SIGUSR1 makes it run
// 200 sequential resolutions, SIGUSR2 1 s of 64 callers; it prints
// "done N." after the Nth.
const childCCP = "child-ccp" // DIR URL: agent/ccp with the dev PKI in DIR, to the fake at URL

func runCCPAlone(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: %s DIR URL", childCCP)
	}
	procs.SmallDaemon() // as the agent
	pki, err := fakeccp.EnsureDevPKI(args[0])
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		return err
	}
	app := pki.App
	c, err := ccp.New(ccp.Options{Servers: []string{args[1]}, CABundle: caPEM, PoolSize: poolSize},
		func() (*tls.Certificate, error) { return &app, nil })
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	h := &harness{ctx: ctx, direct: c}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	fmt.Println("ready")
	for n := 1; ; n++ {
		var s os.Signal
		select {
		case <-ctx.Done():
			return nil
		case s = <-sig:
		}
		if s == syscall.SIGUSR1 {
			_, err = h.sequential(h.resolveDirect, 5*time.Second, 200)
		} else {
			_, _, err = h.concurrent(h.resolveDirect, 64, time.Second, 100000)
		}
		if err != nil {
			return err
		}
		fmt.Printf("done %d.\n", n)
	}
}

// ccpAlone drives child-ccp.
type ccpAlone struct {
	p *rig.Proc
	n int
}

func (c *ccpAlone) run(sig syscall.Signal) error {
	c.n++
	if err := c.p.Signal(sig); err != nil {
		return err
	}
	_, _, err := c.p.WaitLine(fmt.Sprintf("done %d.", c.n), 30*time.Second)
	return err
}

// passwordCopies counts the copies of a password in the agent's memory, as
// root could read them: the fake is given a new random password, the agent
// serves it, and then its whole readable memory is searched for it
// (rig.CountInMemory). The baseline is the same count in child-ccp, which
// makes the same resolutions with agent/ccp alone: the copies the CCP
// client leaves in the standard library's buffers (its connections' TLS
// record buffers and HTTP read buffers), which the agent cannot wipe. The
// agent adds none if the counts are equal. Three readings each:
//
//   - after 200 sequential resolutions;
//   - after 1 s of 64 callers (to the agent, each with its own connection);
//   - of that password again after 200 sequential resolutions of the next
//     one: what outlives its use.
func (h *harness) passwordCopies() error {
	p, err := rig.StartProc("ccp alone", filepath.Join(h.root, "ccpalone.log"), h.self, childCCP, filepath.Join(h.root, "ccp"), h.fakeURL)
	if err != nil {
		return err
	}
	defer p.Stop(5 * time.Second)
	if _, _, err := p.WaitLine("ready", 20*time.Second); err != nil {
		return err
	}
	alone := &ccpAlone{p: p}
	settle := func() { time.Sleep(100 * time.Millisecond) } // answers written, buffers released
	count := func(pid int, pw []byte) (int, string, error) {
		found, err := rig.CountInMemory(pid, pw)
		if err != nil {
			return 0, "", err
		}
		where := map[string]int{}
		for _, f := range found[0] {
			name := f.Mapping
			if name == "" {
				name = "anonymous"
			}
			where[name]++
		}
		return len(found[0]), fmt.Sprint(where), nil
	}
	// reading is one count in the agent and one in child-ccp.
	type reading struct{ agent, alone []float64 }
	var seq, conc, after reading
	both := func(r *reading, pw []byte) (string, error) {
		na, wa, err := count(h.agent.Pid(), pw)
		if err != nil {
			return "", fmt.Errorf("the agent: %w", err)
		}
		nc, wc, err := count(p.Pid(), pw)
		if err != nil {
			return "", fmt.Errorf("ccp alone: %w", err)
		}
		r.agent, r.alone = append(r.agent, float64(na)), append(r.alone, float64(nc))
		return fmt.Sprintf("agent %d %s, ccp alone %d %s", na, wa, nc, wc), nil
	}
	// step drives the agent and child-ccp alike, lets them settle, and
	// counts pw in both.
	seqAgent := func() error { _, err := h.sequential(h.resolveAgent, 5*time.Second, 200); return err }
	concAgent := func() error { _, _, err := h.concurrent(h.resolveAgent, 64, time.Second, 100000); return err }
	step := func(r *reading, pw []byte, drive func() error, aloneSig syscall.Signal) (string, error) {
		if err := drive(); err != nil {
			return "", err
		}
		if err := alone.run(aloneSig); err != nil {
			return "", err
		}
		settle()
		return both(r, pw)
	}
	for round := range max(3, h.rounds/2) {
		pw1, pw2 := randomPassword(), randomPassword()
		if err := h.setPassword(pw1); err != nil {
			return err
		}
		if err := h.servesPassword(pw1); err != nil {
			return err
		}
		w1, err := step(&seq, pw1, seqAgent, syscall.SIGUSR1)
		if err != nil {
			return err
		}
		w2, err := step(&conc, pw1, concAgent, syscall.SIGUSR2)
		if err != nil {
			return err
		}
		if err := h.setPassword(pw2); err != nil {
			return err
		}
		w3, err := step(&after, pw1, seqAgent, syscall.SIGUSR1)
		if err != nil {
			return err
		}
		fmt.Printf("   round %d: copies sequential: %s; 64 callers: %s; after the next password: %s\n", round+1, w1, w2, w3)
	}
	const how = "the fake CCP is given a new random 32-character password, the agent serves it, and the agent's readable memory " +
		"(/proc/<pid>/maps and /proc/<pid>/mem, as root could read it) is searched for it, 100 ms after the last answer; the " +
		"baseline is the same count in child-ccp, a process that makes the same resolutions with agent/ccp alone (built as the " +
		"agent builds it, pool %d): the copies the CCP client leaves in the standard library's buffers. Goal: the agent adds no " +
		"copy. Median of the rounds. "
	base := "agent/ccp alone, same resolutions"
	add := func(key string, r reading, what string) {
		h.rep.add(&figure{Key: key, Value: rig.Median(r.agent), Rounds: r.agent, Baseline: rig.Median(r.alone), BaselineRounds: r.alone,
			BaselineName: base, Method: fmt.Sprintf(how, poolSize) + what, goal: &goal{"<=", rig.Median(r.alone)}})
	}
	add("password_copies_sequential", seq, "After 200 sequential resolutions (one caller on one kept connection).")
	add("password_copies_64_callers", conc, "After the same and then 1 s of 64 callers, each with its own connection to the agent "+
		"(and 64 goroutines in child-ccp): the buffers that hold copies are per CCP connection, so the count follows the connections "+
		"open, not the resolutions.")
	add("password_copies_after_next", after, "The same password, counted again after the fake changed it and both served the new one "+
		"200 times, sequentially: the copies of a password that outlive its use (in pooled connections that stayed idle).")
	return nil
}

// randomPassword is 16 bytes from crypto/rand in hex: 32 characters whose
// JSON form is themselves.
func randomPassword() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return []byte(hex.EncodeToString(b))
}

// servesPassword checks that the agent now answers with pw.
func (h *harness) servesPassword(pw []byte) error {
	res, err := h.api.Resolve(h.ctx, h.runID(), "bench-flow", benchCred)
	if err != nil {
		return err
	}
	defer res.Wipe()
	if err := res.Err(); err != nil {
		return err
	}
	if c := res.Get(benchCred); c == nil || !bytes.Equal(c.Password.Reveal(), pw) {
		return fmt.Errorf("the agent does not answer with the password just set on the fake")
	}
	return nil
}

// setPassword changes the bench account's password on the fake.
func (h *harness) setPassword(pw []byte) error {
	_, err := rig.Call(h.ctx, http.MethodPost, h.fakeAdmin+"/accounts/password",
		map[string]string{"safe": benchSafe, "folder": benchFolder, "object": benchObject, "password": string(pw)})
	return err
}
