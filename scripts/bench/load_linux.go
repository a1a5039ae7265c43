package main

import (
	"context"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

// Every request carries its own run ID (sent to CCP as the Reason), so that
// neither the agent nor the direct client coalesces concurrent requests:
// each resolution is one CCP call, as with distinct flow runs.
func (h *harness) runID() string { return "bench-" + strconv.FormatUint(h.runSeq.Add(1), 10) }

func (h *harness) resolveAgent(ctx context.Context) error {
	res, err := h.api.Resolve(ctx, h.runID(), "bench-flow", benchCred)
	if err != nil {
		return err
	}
	defer res.Wipe()
	return res.Err()
}

func (h *harness) resolveDirect(ctx context.Context) error {
	acc, err := h.direct.Get(ctx, ccp.Request{AppID: benchAppID, Safe: benchSafe, Folder: benchFolder, Object: benchObject, Reason: h.runID()})
	if err != nil {
		return err
	}
	acc.Wipe()
	return nil
}

func (h *harness) accountsQuery(base string) string {
	return base + fakeccp.DefaultPath + "/api/Accounts?AppID=" + benchAppID + "&Safe=" + benchSafe +
		"&Folder=" + benchFolder + "&Object=" + benchObject
}

func (h *harness) resolvePlain(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.accountsQuery(h.fakeURL)+"&Reason="+h.runID(), nil)
	if err != nil {
		return err
	}
	res, err := h.plain.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("fake answered %s", res.Status)
	}
	return nil
}

type leg struct {
	name string
	do   func(context.Context) error
}

// sequential runs do one at a time for d or until max requests, and returns
// the latency of each success. More than 1% errors fails the leg.
func (h *harness) sequential(do func(context.Context) error, d time.Duration, max int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, 4096)
	var errs int
	var lastErr error
	end := time.Now().Add(d)
	for n := 0; n < max && time.Now().Before(end); n++ {
		if h.ctx.Err() != nil {
			return lat, errBudget
		}
		t := time.Now()
		if err := do(h.ctx); err != nil {
			errs, lastErr = errs+1, err
			continue
		}
		lat = append(lat, time.Since(t))
	}
	if errs*100 > len(lat)+errs {
		return lat, fmt.Errorf("%d of %d requests failed: %w", errs, len(lat)+errs, lastErr)
	}
	return lat, nil
}

// concurrent runs do from n goroutines for d or until max requests in all,
// and returns the successes per second. More than 1% errors fails it.
func (h *harness) concurrent(do func(context.Context) error, n int, d time.Duration, max int64) (float64, int64, error) {
	var ok, failed, issued atomic.Int64
	var lastErr atomic.Value
	ctx, cancel := context.WithTimeout(h.ctx, d+10*time.Second)
	defer cancel()
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(end) && issued.Add(1) <= max && ctx.Err() == nil {
				if err := do(ctx); err != nil {
					failed.Add(1)
					lastErr.Store(err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if h.ctx.Err() != nil {
		return 0, 0, errBudget
	}
	if f := failed.Load(); f*100 > ok.Load()+f {
		return 0, 0, fmt.Errorf("%d of %d requests failed: %v", f, ok.Load()+f, lastErr.Load())
	}
	return float64(ok.Load()) / el.Seconds(), ok.Load(), nil
}

// latency measures one caller's sequential resolutions through the agent,
// through the local API alone, directly with the Go CCP client, and with
// plain net/http, in rotating order each round; after each round, the
// pieces measured in this process (see pieces_linux.go).
func (h *harness) latency() error {
	legs := []leg{{"agent", h.resolveAgent}, {"localapi", h.resolveLocalAPI}, {"direct", h.resolveDirect}, {"plain", h.resolvePlain}}
	for _, l := range legs { // warm up: pools, TLS sessions, caches, JIT-free but GC-sized heaps
		if _, err := h.sequential(l.do, 500*time.Millisecond, 300); err != nil {
			return fmt.Errorf("warm-up %s: %w", l.name, err)
		}
	}
	inproc, err := h.newInProcess()
	if err != nil {
		return fmt.Errorf("in-process pieces: %w", err)
	}
	defer inproc.auditFile.Close()
	if _, err := h.inProcessRound(inproc, 200); err != nil {
		return fmt.Errorf("warm-up in-process pieces: %w", err)
	}
	pids := map[string]int{"agent": h.agent.Pid(), "localapi": h.localAPI.Pid(), "direct": os.Getpid()}
	p50 := map[string][]float64{}
	p99 := map[string][]float64{}
	cpu := map[string][]float64{}
	sw := map[string][]float64{}
	var overhead99, overhead50, rest50 []float64
	var resolveUS, auditUS, identityUS, usernameUS []float64
	// Means, for the breakdown inside the agent (inagent_linux.go).
	var agentMean, directMean, inResolve, inCCP, directCCP, outsideResolve, resolveBeyondCCP []float64
	for r := range h.rounds {
		got := map[string][]time.Duration{}
		for i := range legs {
			l := legs[(i+r)%len(legs)]
			before := h.hs.mark(h)
			pid, counted := pids[l.name]
			var c0 procCounters
			if counted {
				c0, _ = readProcCounters(pid)
			}
			var in0 inAgent
			var d0sum, d0n float64
			switch l.name {
			case "agent":
				if in0, err = h.readInAgent(h.ctx); err != nil {
					return fmt.Errorf("round %d: the agent's metrics: %w", r+1, err)
				}
			case "direct":
				d0sum, d0n = h.directAttempts.read()
			}
			lat, err := h.sequential(l.do, 800*time.Millisecond, 20000)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, l.name, err)
			}
			switch l.name {
			case "agent":
				in1, err := h.readInAgent(h.ctx)
				if err != nil {
					return fmt.Errorf("round %d: the agent's metrics: %w", r+1, err)
				}
				res, ccpUS, err := in0.means(in1)
				if err != nil {
					return fmt.Errorf("round %d: the agent's metrics: %w", r+1, err)
				}
				m := meanOf(lat)
				agentMean, inResolve, inCCP = append(agentMean, m), append(inResolve, res), append(inCCP, ccpUS)
				outsideResolve, resolveBeyondCCP = append(outsideResolve, m-res), append(resolveBeyondCCP, res-ccpUS)
			case "direct":
				d1sum, d1n := h.directAttempts.read()
				ccpUS, err := meanUS(d0sum, d0n, d1sum, d1n)
				if err != nil {
					return fmt.Errorf("round %d: the direct client's attempts: %w", r+1, err)
				}
				directMean, directCCP = append(directMean, meanOf(lat)), append(directCCP, ccpUS)
			}
			if counted {
				if c1, err := readProcCounters(pid); err == nil {
					c, s := perResolution(c0, c1, len(lat))
					cpu[l.name], sw[l.name] = append(cpu[l.name], c), append(sw[l.name], s)
				}
			}
			switch l.name {
			case "agent":
				h.hs.addAgent(h, before)
			case "direct":
				h.hs.addDirect(h, before)
			}
			s := rig.SortedCopy(lat)
			got[l.name] = s
			p50[l.name] = append(p50[l.name], rig.US(rig.Percentile(s, 50)))
			p99[l.name] = append(p99[l.name], rig.US(rig.Percentile(s, 99)))
		}
		pr, err := h.inProcessRound(inproc, 1000)
		if err != nil {
			return fmt.Errorf("round %d in-process pieces: %w", r+1, err)
		}
		med := func(d []time.Duration) float64 { return rig.US(rig.Percentile(rig.SortedCopy(d), 50)) }
		resolveUS = append(resolveUS, med(pr.resolve))
		auditUS = append(auditUS, max(0, med(pr.audited)-med(pr.resolve)))
		identityUS = append(identityUS, med(pr.identity))
		usernameUS = append(usernameUS, med(pr.username))
		h.latAgent = append(h.latAgent, got["agent"]...)
		h.latDirect = append(h.latDirect, got["direct"]...)
		overhead99 = append(overhead99, rig.US(rig.Percentile(got["agent"], 99)-rig.Percentile(got["direct"], 99)))
		overhead50 = append(overhead50, rig.US(rig.Percentile(got["agent"], 50)-rig.Percentile(got["direct"], 50)))
		rest50 = append(rest50, p50["agent"][r]-p50["direct"][r]-p50["localapi"][r]-auditUS[r])
		fmt.Printf("   round %d: p50/p99 us agent %.0f/%.0f local API alone %.0f/%.0f direct %.0f/%.0f net/http %.0f/%.0f (n %d/%d/%d/%d); "+
			"in process: resolve %.1f, audit write %.1f, identity %.1f us\n", r+1,
			p50["agent"][r], p99["agent"][r], p50["localapi"][r], p99["localapi"][r], p50["direct"][r], p99["direct"][r], p50["plain"][r], p99["plain"][r],
			len(got["agent"]), len(got["localapi"]), len(got["direct"]), len(got["plain"]), resolveUS[r], auditUS[r], identityUS[r])
	}
	const seqMethod = "one caller, sequential requests, each with its own run ID (so no coalescing); %d rounds of 0.8 s per path, " +
		"paths in rotating order each round; the value is the median of the rounds' percentiles."
	plainName := "net/http GET, same mTLS and fake"
	directName := "resolve_direct (same round)"
	agentName := "resolve_agent_p50_us (same round)"
	add := func(key, unit string, vals, base []float64, baseName, method string, g *goal) {
		h.rep.add(&figure{Key: key, Unit: unit, Value: rig.Median(vals), Rounds: vals, Baseline: rig.Median(base), BaselineRounds: base,
			BaselineName: baseName, Method: method, goal: g})
	}
	add("resolve_direct_p50_us", "µs", p50["direct"], p50["plain"], plainName,
		fmt.Sprintf("p50 of the Go CCP client (agent/ccp, pool %d) straight to the fake; "+seqMethod+" Baseline: a bare net/http client with the same mTLS to the same URL.", poolSize, h.rounds), nil)
	add("resolve_direct_p99_us", "µs", p99["direct"], p99["plain"], plainName,
		"p99 of the same; "+fmt.Sprintf(seqMethod, h.rounds), nil)
	add("resolve_agent_p50_us", "µs", p50["agent"], p50["direct"], directName,
		"p50 of POST /v1/resolve through bin/credagent's socket (agent/localapi/client), the agent calling the same fake; "+fmt.Sprintf(seqMethod, h.rounds), nil)
	add("resolve_agent_p99_us", "µs", p99["agent"], p99["direct"], directName,
		"p99 of the same; "+fmt.Sprintf(seqMethod, h.rounds), nil)
	add("agent_overhead_p50_us", "µs", overhead50, p50["direct"], "resolve_direct_p50_us",
		"agent p50 minus direct p50 within each round; the median of the rounds.", &goal{"<=", 100})
	add("agent_overhead_p99_us", "µs", overhead99, p99["direct"], "resolve_direct_p99_us",
		"agent p99 minus direct p99 within each round; the median of the rounds.", &goal{"<", 300})
	// The breakdown (bench/README.md, "Where the agent's time goes").
	add("piece_localapi_p50_us", "µs", p50["localapi"], p50["agent"], agentName,
		"the local API alone: p50 of POST /v1/resolve through agent/localapi/client to scripts/bench child-localapi, a process of its own "+
			"serving agent/localapi with agent/resolve (policy, rate limit, lookup) and an instant Fetcher, audit off; so HTTP over the socket, "+
			"the request's checks, JSON both ways, and the wake-up of another process and back; "+fmt.Sprintf(seqMethod, h.rounds), nil)
	add("piece_localapi_p99_us", "µs", p99["localapi"], p99["agent"], "resolve_agent_p99_us (same round)",
		"p99 of the same.", nil)
	add("piece_resolve_us", "µs", resolveUS, p50["agent"], agentName,
		"policy, rate limit, lookup in the state and the result, without the CCP call: p50 of agent/resolve's Resolve in the harness's "+
			"process with an instant Fetcher and the audit stream off; 1,000 per round, after each latency round.", nil)
	add("piece_audit_write_us", "µs", auditUS, p50["agent"], agentName,
		"one audit record written: p50 of the same Resolve with the audit stream into a file opened as the agent opens its log files "+
			"(platform/logfile, in the temporary directory that holds the agent's log), minus the p50 without it; interleaved in blocks of 50.", nil)
	add("piece_identity_per_connection_us", "µs", identityUS, usernameUS, "user.LookupId of another account (uncached): what the name cache saves",
		"the caller's identity, once per connection (the clients keep their connections, so a resolution on an open connection pays none): "+
			"p50 of localsock.PeerOf on a fresh Unix connection: SO_PEERCRED, SO_PEERPIDFD, /proc/<pid>/status and exe, and the account "+
			"name, from the agent's uid->name cache (one minute) after the first; 100 per round.", nil)
	add("piece_rest_p50_us", "µs", rest50, p50["agent"], agentName,
		"what the pieces leave: agent p50 minus direct p50, the local API's p50 and the audit write, per round; the hand-offs the agent "+
			"adds between its threads and processes (its CCP answer wakes it, not the caller), which agent_switches_per_resolution counts.", nil)
	// Inside the agent: its own timings, read from its /metrics (means).
	const meanMethod = " Means over each round's sequential resolutions; the value is the median of the rounds' means."
	add("resolve_agent_mean_us", "µs", agentMean, directMean, "resolve_direct mean (same round)",
		"mean of the callers' times through the agent, in the same rounds as resolve_agent_p50_us; the baseline is the mean of the "+
			"direct rounds."+meanMethod, nil)
	add("piece_ccp_in_agent_mean_us", "µs", inCCP, directCCP, "the same client's attempts in the harness (direct rounds)",
		"the CCP client inside the agent process: one HTTP attempt of agent/ccp as the agent times it (request, round trip, body, "+
			"decoding; credagent_ccp_request_duration_seconds' sum and count on the agent's /metrics, read before and after each agent "+
			"round); the baseline is the same attempts of the same client timed the same way (ccp.Options.Observe) in the harness's "+
			"direct rounds, so the ratio is what the agent process does to its CCP client."+meanMethod, nil)
	add("piece_resolve_in_agent_mean_us", "µs", inResolve, agentMean, "resolve_agent_mean_us (same round)",
		"one name resolved inside the agent: agent/resolve from the lookup to the answer (policy, lookup, the CCP fetch and its "+
			"coalescing; not the audit write), credagent_resolve_duration_seconds on the agent's /metrics."+meanMethod, nil)
	add("piece_resolve_beyond_ccp_mean_us", "µs", resolveBeyondCCP, agentMean, "resolve_agent_mean_us (same round)",
		"piece_resolve_in_agent_mean_us minus piece_ccp_in_agent_mean_us, per round: what agent/resolve adds around the CCP "+
			"attempt (policy, lookup, the hand-off to the fetch's goroutine and back)."+meanMethod, nil)
	add("piece_outside_resolve_mean_us", "µs", outsideResolve, agentMean, "resolve_agent_mean_us (same round)",
		"resolve_agent_mean_us minus piece_resolve_in_agent_mean_us, per round: everything outside agent/resolve (the caller's "+
			"client, the socket, the local API's HTTP and JSON, the audit write, and the wake-ups of both processes)."+meanMethod, nil)
	add("agent_cpu_us_per_resolution", "µs", cpu["agent"], cpu["direct"], "the harness's own process per direct resolution",
		"CPU time of the agent process (all its threads, from /proc/<pid>/task/*/schedstat) during its sequential rounds, per resolution; "+
			"the baseline is the same for the harness's process during the direct rounds (the Go CCP client and the loop).", nil)
	add("agent_switches_per_resolution", "", sw["agent"], sw["direct"], "the harness's own process per direct resolution",
		"context switches (voluntary and involuntary, all threads, /proc/<pid>/task/*/status) of the agent process during its sequential "+
			"rounds, per resolution: each is a thread going to sleep or being woken; baseline as for agent_cpu_us_per_resolution.", nil)
	add("piece_localapi_cpu_us_per_resolution", "µs", cpu["localapi"], cpu["agent"], "agent_cpu_us_per_resolution (same round)",
		"CPU time of child-localapi per resolution in its rounds, as for agent_cpu_us_per_resolution.", nil)
	return nil
}
