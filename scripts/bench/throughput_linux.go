package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// callers is the concurrency of the throughput figures (issue 7).
const callers = 64

// handshakes counts connections made to the fake by the agent (from the
// fake's counters, around the agent's legs only) and full handshakes made by
// the direct client (from its Stats).
type handshakes struct {
	agentConns, agentReqs             uint64
	agentFull, agentResumed           uint64 // seen on the fake's side of the wire
	directWireFull, directWireResumed uint64
	// directConns and directReqs are the same counters around the direct
	// legs; directFull, directResumed and directAttempts are the direct
	// client's own Stats over them.
	directConns, directReqs                   uint64
	directFull, directResumed, directAttempts uint64
	err                                       error
}

// mark is what addAgent and addDirect need from before a leg.
type mark struct {
	fake   fakeccp.Counters
	wire   handshakeCounts
	direct ccp.Stats
}

func (hs *handshakes) mark(h *harness) mark {
	return mark{hs.counters(h), hs.wire(h), h.direct.Stats()}
}

// wire reads the handshakes the fake's listener classified.
func (hs *handshakes) wire(h *harness) handshakeCounts {
	var c handshakeCounts
	err := rig.GetJSON(h.ctx, h.fakeHS+"/", &c)
	if err != nil && hs.err == nil {
		hs.err = err
	}
	return c
}

// counters reads the fake's counters, remembering the first failure.
func (hs *handshakes) counters(h *harness) fakeccp.Counters {
	c, err := h.fakeCounters()
	if err != nil && hs.err == nil {
		hs.err = err
	}
	return c
}

func (hs *handshakes) addAgent(h *harness, before mark) {
	after := hs.counters(h)
	hs.agentConns += after.Connections - before.fake.Connections
	hs.agentReqs += after.Requests - before.fake.Requests
	w := hs.wire(h)
	hs.agentFull += w.Full - before.wire.Full
	hs.agentResumed += w.Resumed - before.wire.Resumed
}

func (hs *handshakes) addDirect(h *harness, before mark) {
	after := hs.counters(h)
	hs.directConns += after.Connections - before.fake.Connections
	hs.directReqs += after.Requests - before.fake.Requests
	w := hs.wire(h)
	hs.directWireFull += w.Full - before.wire.Full
	hs.directWireResumed += w.Resumed - before.wire.Resumed
	st := h.direct.Stats()
	hs.directFull += st.FullHandshakes - before.direct.FullHandshakes
	hs.directResumed += st.ResumedHandshakes - before.direct.ResumedHandshakes
	hs.directAttempts += st.Attempts - before.direct.Attempts
}

// rssSampler records the largest VmRSS of a process until stopped.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if kb, err := rig.ProcStatusKB(pid, "VmRSS"); err == nil {
				s.mu.Lock()
				s.max = max(s.max, kb)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) end() int64 {
	close(s.stop)
	<-s.done
	return s.max
}

func mb(kb int64) float64 { return float64(kb) * 1024 / 1e6 }

// throughput measures resolutions per second from 64 concurrent callers
// through the agent and directly, alternating, and the agent's memory and
// handshakes meanwhile.
func (h *harness) throughput() error {
	var err error
	if h.idle, err = rig.StartProc("idle Go process", filepath.Join(h.root, "idle.log"), h.self, childIdle); err != nil {
		return err
	}
	if _, _, err := h.idle.WaitLine("ready", 10*time.Second); err != nil {
		return err
	}
	// Warm up: grow the pools to the working size.
	if _, _, err := h.concurrent(h.resolveAgent, callers, 500*time.Millisecond, 20000); err != nil {
		return fmt.Errorf("warm-up agent: %w", err)
	}
	if _, _, err := h.concurrent(h.resolveDirect, callers, 500*time.Millisecond, 20000); err != nil {
		return fmt.Errorf("warm-up direct: %w", err)
	}
	var agentRPS, directRPS, rssRounds []float64
	// CPU per resolution of each process in each kind of round: where the
	// throughput goes (see loadCPU).
	var cpuAgentPath, cpuDirectPath loadCPU
	const d = 1500 * time.Millisecond
	for r := range h.rounds {
		for i := range 2 {
			if (i+r)%2 == 0 {
				before := h.hs.mark(h)
				cpu := h.markCPU()
				rs := sampleRSS(h.agent.Pid(), 50*time.Millisecond)
				rps, n, err := h.concurrent(h.resolveAgent, callers, d, 200000)
				peak := rs.end()
				if err != nil {
					return fmt.Errorf("round %d agent: %w", r+1, err)
				}
				cpuAgentPath.add(h, cpu, n)
				h.hs.addAgent(h, before)
				agentRPS = append(agentRPS, rps)
				rssRounds = append(rssRounds, mb(peak))
			} else {
				before := h.hs.mark(h)
				cpu := h.markCPU()
				rps, n, err := h.concurrent(h.resolveDirect, callers, d, 200000)
				if err != nil {
					return fmt.Errorf("round %d direct: %w", r+1, err)
				}
				cpuDirectPath.add(h, cpu, n)
				h.hs.addDirect(h, before)
				directRPS = append(directRPS, rps)
			}
		}
		fmt.Printf("   round %d: agent %.0f/s (RSS peak %.1f MB), direct %.0f/s\n", r+1, agentRPS[r], rssRounds[r], directRPS[r])
	}
	h.rep.add(&figure{Key: "agent_throughput_rps", Unit: "/s", Value: rig.Median(agentRPS), Rounds: agentRPS,
		Baseline: rig.Median(directRPS), BaselineRounds: directRPS, BaselineName: "direct Go CCP client, 64 callers",
		Method: fmt.Sprintf("successful resolutions per second from %d goroutines sharing one agent/localapi/client, each request its own run ID; "+
			"%d rounds of %.1f s alternating with the direct client under the same concurrency; median of the rounds. "+
			"The load generator, the agent and the fake share the machine's cores.", callers, h.rounds, d.Seconds()),
		goal: &goal{">=", 5000}})

	h.addLoadCPU(&cpuAgentPath, &cpuDirectPath)

	hwm, err := rig.ProcStatusKB(h.agent.Pid(), "VmHWM")
	if err != nil {
		return err
	}
	idleKB, err := rig.ProcStatusKB(h.idle.Pid(), "VmRSS")
	if err != nil {
		return err
	}
	h.idle.Stop(5 * time.Second)
	h.rep.add(&figure{Key: "agent_rss_mb", Unit: "MB", Value: mb(hwm), Rounds: rssRounds, Baseline: mb(idleKB),
		BaselineName: "VmRSS of an idle trivial Go process",
		Method: "VmHWM (peak resident set) of the bin/credagent process from /proc after the throughput rounds; rounds are the largest VmRSS " +
			"sampled every 50 ms during each agent round. MB = 10^6 bytes.",
		goal: &goal{"<", 40}})

	f := &figure{Key: "tls_full_handshakes_per_10k", Unit: "per 10k", BaselineName: "direct Go CCP client, same count",
		Method: fmt.Sprintf("full TLS handshakes the fake served during the agent's latency and throughput rounds, per 10,000 requests "+
			"it answered meanwhile. The fake counts connections, not handshakes, so the harness serves the fake library on a listener "+
			"that reads each connection's ServerHello (in the clear in TLS 1.3) and counts it as resumed when the server accepted a "+
			"pre-shared key, full otherwise. Baseline: the same count around the direct client's rounds (its own Stats agree; see the notes). "+
			"Goal: no more than the pool size (ccp.pool_size = %d).", poolSize),
		goal: &goal{"<=", poolSize}}
	switch {
	case h.hs.err != nil:
		f.Error = h.hs.err.Error()
	case h.hs.agentReqs == 0:
		f.Error = "no agent requests counted"
	default:
		f.Value = float64(h.hs.agentFull) * 10000 / float64(h.hs.agentReqs)
		if h.hs.directReqs > 0 {
			f.Baseline = float64(h.hs.directWireFull) * 10000 / float64(h.hs.directReqs)
		}
		h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("handshakes: for %d requests the agent opened %d connections to the fake: %d full and %d resumed "+
			"handshakes (%.0f connections per 10k requests). For %d requests the direct client opened %d: %d full and %d resumed on the wire; "+
			"its Stats say %d full, %d resumed for %d attempts",
			h.hs.agentReqs, h.hs.agentConns, h.hs.agentFull, h.hs.agentResumed, float64(h.hs.agentConns)*10000/float64(h.hs.agentReqs),
			h.hs.directReqs, h.hs.directConns, h.hs.directWireFull, h.hs.directWireResumed, h.hs.directFull, h.hs.directResumed, h.hs.directAttempts))
	}
	h.rep.add(f)
	return nil
}

// fakeThroughput measures the fake with fakeccp.LoadTest, alternating with
// a bare net/http mTLS server that answers a constant body.
func (h *harness) fakeThroughput() error {
	const conc = 32
	const d = 1500 * time.Millisecond
	fakeURL := h.accountsQuery(h.fakeURL)
	bareURL := h.accountsQuery(h.bareURL)
	var fake, bare []float64
	lt := func(url string) (float64, error) {
		res, err := fakeccp.LoadTest(h.ctx, fakeccp.LoadOptions{URL: url, TLSConfig: h.pki.ClientTLSConfig(),
			Concurrency: conc, Duration: d, Requests: 500000})
		if err != nil {
			return 0, err
		}
		if ok := res.ByStatus[200]; ok*100 < res.Requests*99 || res.Errors*100 > res.Requests {
			return 0, fmt.Errorf("%d of %d answers were 200, %d transport errors", ok, res.Requests, res.Errors)
		}
		return res.PerSecond, nil
	}
	if _, err := lt(fakeURL); err != nil { // warm-up
		return err
	}
	rounds := max(3, h.rounds-2)
	for r := range rounds {
		for i := range 2 {
			if (i+r)%2 == 0 {
				rps, err := lt(fakeURL)
				if err != nil {
					return fmt.Errorf("round %d fake: %w", r+1, err)
				}
				fake = append(fake, rps)
			} else {
				rps, err := lt(bareURL)
				if err != nil {
					return fmt.Errorf("round %d bare: %w", r+1, err)
				}
				bare = append(bare, rps)
			}
		}
		fmt.Printf("   round %d: fake %.0f/s, bare %.0f/s\n", r+1, fake[r], bare[r])
	}
	h.rep.add(&figure{Key: "fakeccp_throughput_rps", Unit: "/s", Value: rig.Median(fake), Rounds: fake, Baseline: rig.Median(bare), BaselineRounds: bare,
		BaselineName: "bare net/http mTLS server, constant body",
		Method: fmt.Sprintf("fakeccp.LoadTest (keep-alive HTTP/1.1 over mTLS, %d connections) against the fake (the fakeccp library in its own process) "+
			"for sap-prod-admin, %d rounds of %.1f s alternating with the same load against a bare net/http server with the same "+
			"certificates that answers a constant body of the same size; median of the rounds.", conc, rounds, d.Seconds()),
		goal: &goal{">=", 20000}})
	return nil
}

// loadCPU is the CPU time, per resolution, of the three processes that
// share the cores in the throughput rounds of one path: the harness (the 64
// callers and their client), the agent (none on the direct path) and the
// fake CCP. One value per round.
type loadCPU struct {
	harness, agent, fake, total []float64
}

// cpuMark is the three processes' counters at the start of a round.
type cpuMark struct {
	harness, agent, fake procCounters
	err                  error
}

func (h *harness) markCPU() cpuMark {
	var m cpuMark
	var errs [3]error
	m.harness, errs[0] = readProcCounters(os.Getpid())
	m.agent, errs[1] = readProcCounters(h.agent.Pid())
	m.fake, errs[2] = readProcCounters(h.fake.Pid())
	m.err = errors.Join(errs[:]...)
	return m
}

// add records one round of n resolutions that began at m.
func (l *loadCPU) add(h *harness, m cpuMark, n int64) {
	end := h.markCPU()
	if m.err != nil || end.err != nil || n <= 0 {
		return
	}
	hv, _ := perResolution(m.harness, end.harness, int(n))
	av, _ := perResolution(m.agent, end.agent, int(n))
	fv, _ := perResolution(m.fake, end.fake, int(n))
	l.harness = append(l.harness, hv)
	l.agent = append(l.agent, av)
	l.fake = append(l.fake, fv)
	l.total = append(l.total, hv+av+fv)
}

// addLoadCPU reports where the throughput goes. With the cores saturated,
// throughput is about the cores' time divided by the CPU time all three
// processes spend per resolution, so the throughput ratio is about the
// inverse of the ratio of those totals; and the pieces say which process
// holds the difference.
func (h *harness) addLoadCPU(agentPath, directPath *loadCPU) {
	if len(agentPath.total) == 0 || len(directPath.total) == 0 {
		return
	}
	const how = "CPU time (all threads, /proc/<pid>/task/*/schedstat) per resolution during the throughput rounds; median of the rounds. "
	add := func(key string, v, b []float64, bname, method string) {
		h.rep.add(&figure{Key: key, Unit: "µs", Value: rig.Median(v), Rounds: v, Baseline: rig.Median(b), BaselineRounds: b,
			BaselineName: bname, Method: how + method})
	}
	add("load_cpu_us_per_resolution", agentPath.total, directPath.total, "the same on the direct path",
		"The three processes together (harness, agent, fake) through the agent; the baseline is the same on the direct path "+
			"(harness with the Go CCP client, fake). The ratio is about the inverse of the throughput ratio.")
	add("load_agent_cpu_us_per_resolution", agentPath.agent, directPath.harness, "the harness on the direct path (its Go CCP client)",
		"The agent process. The baseline is the harness's process on the direct path, where the same agent/ccp client does the CCP "+
			"exchange: the agent's value minus it is about what the agent adds to the CCP client (local API, policy, audit, its runtime).")
	add("load_callers_cpu_us_per_resolution", agentPath.harness, agentPath.agent, "the agent on the same rounds",
		"The harness's process through the agent: the 64 callers and agent/localapi/client.")
	add("load_fake_cpu_us_per_resolution", agentPath.fake, directPath.fake, "the fake on the direct path",
		"The fake CCP through the agent; the baseline is the fake on the direct path.")
}
