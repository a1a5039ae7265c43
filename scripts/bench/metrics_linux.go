package main

import (
	"crypto/tls"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"path/filepath"
	"runtime"
	"time"

	"github.com/credagent/credagent/agent/metrics"
	"github.com/credagent/credagent/agent/state"
	"golang.org/x/sys/unix"
)

// metricsCost measures the CPU that metrics cost an agent serving 1,000
// resolutions per second: each resolution records its outcome and one CCP
// attempt, and the textfile is rewritten every interval (10 s, the
// default). The work runs on one locked OS thread, timed with that
// thread's CPU clock (RUSAGE_THREAD), so waiting for the disk is not
// counted and nothing else in the process is. The baseline is one core.
func (h *harness) metricsCost() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_THREAD, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// A registry with the shape of a busy agent: several stores, classes
	// and applications.
	r := metrics.New("bench")
	r.SetKeyStore("file", false)
	s := state.Empty()
	for i := range 20 {
		id := fmt.Sprintf("App%02d", i)
		s.Applications[id] = &state.Application{AppID: id, Certificate: &tls.Certificate{}, NotAfter: time.Now().Add(time.Duration(i) * time.Hour)}
	}
	var st state.State
	st.Publish(s)
	r.SetState(st.Load)
	classes := []string{"", "", "", "", "not_found", "timeout", "forbidden", "vault_unreachable"}
	path := filepath.Join(h.root, "credagent.prom")
	const perSecond = 1000
	const interval = 10 * time.Second
	var rounds []float64
	var writeUS []float64
	for round := range max(3, h.rounds) {
		if h.ctx.Err() != nil {
			return errBudget
		}
		// One interval's worth: 10 s x 1,000 resolutions, then one write.
		c0 := cpu()
		for i := range perSecond * int(interval/time.Second) {
			cl := classes[i%len(classes)]
			out := "ok"
			if cl != "" {
				out = "error"
			}
			r.Resolution("resolve", out, cl, time.Duration(i%5000)*time.Microsecond)
			r.CCPRequest(fmt.Sprintf("https://ccp%d.example.com:443", i%4), 200, time.Duration(i%3000)*time.Microsecond)
		}
		c1 := cpu()
		if err := r.WriteFile(path); err != nil {
			return err
		}
		c2 := cpu()
		writeUS = append(writeUS, float64(c2-c1)/1e3)
		rounds = append(rounds, 100*float64(c2-c0)/float64(interval))
		_ = round
	}
	h.rep.add(&figure{Key: "metrics_cpu_percent", Unit: "%", Value: rig.Median(rounds), Rounds: rounds,
		BaselineName: "one CPU core", Baseline: 100,
		Method: fmt.Sprintf("the CPU (user+system, RUSAGE_THREAD) of recording 1,000 resolutions per second (each with one CCP attempt) "+
			"and rewriting the textfile every 10 s, as a share of one core; one textfile write took %.0f µs of CPU (median), "+
			"so even the shortest interval (1 s) adds only that per second; median of %d rounds.", rig.Median(writeUS), len(rounds)),
		goal: &goal{"<", 1}})
	return nil
}
