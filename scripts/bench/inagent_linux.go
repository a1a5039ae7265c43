package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/scripts/internal/rig"
)

// The agent's own timings, read from its /metrics between the latency
// rounds: the sums and counts of its histograms
// credagent_resolve_duration_seconds (agent/resolve, one name: lookup,
// policy, the CCP fetch and its coalescing; not the audit write, not the
// local API) and credagent_ccp_request_duration_seconds (agent/ccp, one
// HTTP attempt: request, round trip, body and decoding). Their buckets are
// too coarse for a percentile at this scale (the first is 0.5 ms), so the
// breakdown inside the agent is in means, with the callers' means beside
// them.

// inAgent is a reading of the agent's two histograms.
type inAgent struct {
	resolveSum, resolveN float64
	ccpSum, ccpN         float64
}

// meanUS is the mean in µs of the observations between a and b.
func meanUS(sumA, nA, sumB, nB float64) (float64, error) {
	if nB <= nA {
		return 0, fmt.Errorf("no observations (%v then %v)", nA, nB)
	}
	return (sumB - sumA) / (nB - nA) * 1e6, nil
}

// means returns the mean resolve and CCP attempt times (µs) between a and b.
func (a inAgent) means(b inAgent) (resolveUS, ccpUS float64, err error) {
	if resolveUS, err = meanUS(a.resolveSum, a.resolveN, b.resolveSum, b.resolveN); err != nil {
		return 0, 0, fmt.Errorf("credagent_resolve_duration_seconds: %w", err)
	}
	if ccpUS, err = meanUS(a.ccpSum, a.ccpN, b.ccpSum, b.ccpN); err != nil {
		return 0, 0, fmt.Errorf("credagent_ccp_request_duration_seconds: %w", err)
	}
	return resolveUS, ccpUS, nil
}

// readInAgent scrapes the agent's /metrics.
func (h *harness) readInAgent(ctx context.Context) (inAgent, error) {
	b, err := rig.Call(ctx, http.MethodGet, "http://"+h.agentMetrics+"/metrics", nil)
	if err != nil {
		return inAgent{}, err
	}
	return parseInAgent(bytes.NewReader(b))
}

// parseInAgent reads the four series from a Prometheus text page.
func parseInAgent(r io.Reader) (inAgent, error) {
	var m inAgent
	want := map[string]*float64{
		"credagent_resolve_duration_seconds_sum":       &m.resolveSum,
		"credagent_resolve_duration_seconds_count":     &m.resolveN,
		"credagent_ccp_request_duration_seconds_sum":   &m.ccpSum,
		"credagent_ccp_request_duration_seconds_count": &m.ccpN,
	}
	seen := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if p := want[name]; p != nil {
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				return m, fmt.Errorf("%s: %w", name, err)
			}
			*p = v
			seen++
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if seen != len(want) {
		return m, fmt.Errorf("the metrics page has %d of the %d series wanted", seen, len(want))
	}
	return m, nil
}

// attemptTimes sums the direct client's CCP attempts, timed by agent/ccp
// exactly as in the agent (ccp.Options.Observe).
type attemptTimes struct {
	n  atomic.Int64
	ns atomic.Int64
}

func (a *attemptTimes) observe(_ string, _ int, took time.Duration) {
	a.ns.Add(int64(took))
	a.n.Add(1)
}

func (a *attemptTimes) read() (sumSeconds, n float64) {
	return float64(a.ns.Load()) / 1e9, float64(a.n.Load())
}

// meanOf is the mean of ds in µs.
func meanOf(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum) / float64(len(ds)) / 1e3
}
