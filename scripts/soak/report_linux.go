package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/credagent/credagent/scripts/internal/rig"
)

// The markers of the soak's section in bench/README.md (which the bench
// rewrites around it).
const (
	readmeBegin = "<!-- soak:begin -->"
	readmeEnd   = "<!-- soak:end -->"
)

// write prints the verdicts and writes soak.json, soak.png and the README
// section.
func (s *soak) write(r *results, outDir, readme string) error {
	fmt.Println()
	printChecks(os.Stdout, r)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "soak.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var img bytes.Buffer
	if err := rig.RenderTimeSeriesPNG(&img, chart(r)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "soak.png"), img.Bytes(), 0o644); err != nil {
		return err
	}
	if readme != "" {
		var sum bytes.Buffer
		writeSummary(&sum, r)
		doc, err := os.ReadFile(readme)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if _, ok := rig.Between(doc, readmeBegin, readmeEnd); !ok {
			doc = append(doc, []byte("\n"+readmeBegin+"\n"+readmeEnd+"\n")...)
		}
		if doc, err = rig.ReplaceBetween(doc, readmeBegin, readmeEnd, sum.Bytes()); err != nil {
			return fmt.Errorf("%s: %w", readme, err)
		}
		if err := os.WriteFile(readme, doc, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("\nwrote %s/soak.json and %s/soak.png\n", outDir, outDir)
	return nil
}

func printChecks(w io.Writer, r *results) {
	fmt.Fprintf(w, "soak: %.1f min (%.0f simulated), %d resolutions (%.0f/s), %d checks, %d statuses, %d hang-ups, %d refused as expected\n",
		r.Minutes, r.SimulatedMinutes, r.Resolutions, r.ResolutionsPerS, r.Checks, r.Statuses, r.HangUps, r.Refused)
	idle := ""
	if r.Machine["cpu_idle"] != "" {
		idle = "; " + r.Machine["cpu_idle"]
	}
	fmt.Fprintf(w, "soak: machine: load average %s at the end; CPU time stolen by the hypervisor: %s %%%s\n",
		r.Machine["load_end"], r.Machine["cpu_steal_percent"], idle)
	for _, c := range r.Verdicts {
		v := "pass"
		if !c.Pass {
			v = "FAIL"
		}
		fmt.Fprintf(w, "  %-4s %-66s %10s (limit %s) %s\n", v, c.Name, rig.TrimFloat(c.Value), rig.TrimFloat(c.Limit), c.Detail)
	}
	for _, f := range r.FirstFailures {
		fmt.Fprintf(w, "  failure: %s\n", f)
	}
	keys := make([]string, 0, len(r.Events))
	for k := range r.Events {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !strings.HasSuffix(k, " turn") && k != "store order" {
			fmt.Fprintf(w, "  event: %-48s %d\n", k, r.Events[k])
		}
	}
}

// chart is the PNG: one panel per series, the fault windows shaded, the
// end of the warm-up marked.
func chart(r *results) rig.TimeSeriesChart {
	pts := func(f func(sample) float64) []rig.Point {
		var out []rig.Point
		for _, s := range r.Series {
			out = append(out, rig.Point{T: s.T, V: f(s)})
		}
		return out
	}
	c := rig.TimeSeriesChart{
		Title: fmt.Sprintf("SOAK: %.0f MIN AT SPEED %g, %.0f RESOLUTIONS/S. SHADED: CCP FAULTS; DASHED: END OF WARM-UP", r.Minutes, r.Speed, r.ResolutionsPerS),
		Mark:  r.warmup,
	}
	for _, w := range r.Windows {
		c.Shaded = append(c.Shaded, rig.Span{From: w.From, To: w.To})
	}
	orange, blue, green, purple := color.RGBA{220, 90, 20, 255}, color.RGBA{30, 90, 200, 255}, color.RGBA{20, 140, 60, 255}, color.RGBA{120, 50, 160, 255}
	c.Panels = []rig.Panel{
		{Title: "RSS (MB)", Points: pts(func(s sample) float64 { return s.RSSMB }), Color: orange},
		{Title: "GO HEAP LIVE (MB)", Points: pts(func(s sample) float64 { return s.HeapLiveMB }), Color: blue},
		{Title: "GO HEAP IN USE (MB)", Points: pts(func(s sample) float64 { return s.HeapInuseMB }), Color: blue},
		{Title: "GOROUTINES", Points: pts(func(s sample) float64 { return float64(s.Goroutines) }), Color: green},
		{Title: "OPEN DESCRIPTORS", Points: pts(func(s sample) float64 { return float64(s.FDs) }), Color: green},
		{Title: "CONNECTIONS TO CCP", Points: pts(func(s sample) float64 { return float64(s.CCPConns) }), Color: green},
		{Title: "STATE DIRECTORY (KB), DASHED: BOUND", Points: pts(func(s sample) float64 { return float64(s.StateBytes) / 1024 }), Color: purple,
			Limit: ptr(float64(r.StateBoundBytes) / 1024)},
		{Title: "RESOLVE P99 AND P50 (BLUE) IN MS", Points: pts(func(s sample) float64 { return s.P99us / 1000 }), Color: orange,
			Second: pts(func(s sample) float64 { return s.P50us / 1000 }), SecondColor: blue},
	}
	return c
}

func ptr(x float64) *float64 { return &x }

// writeSummary is the soak section of bench/README.md.
func writeSummary(w io.Writer, r *results) {
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "## Soak (`make soak`)\n\n")
	fmt.Fprintf(w, "Last run: %.0f minutes at speed %g (%.0f simulated minutes), %s. Machine: %s, %s cores, load average %s at the start and %s at the end, "+
		"CPU time stolen by the hypervisor: %s %%; "+
		"the machine was shared with other builds and tests, so latencies are noisy. Written by `scripts/soak`; figures in [soak.json](soak.json).\n\n",
		r.Minutes, r.Speed, r.SimulatedMinutes, verdict, r.Machine["cpu"], r.Machine["cores"], r.Machine["load_start"], r.Machine["load_end"],
		cmp.Or(r.Machine["cpu_steal_percent"], "unknown"))
	fmt.Fprintf(w, "%d resolutions (%.0f/s) from %s, with %d checks, %d statuses, %d callers hanging up mid-request and %d resolutions refused by the policy as expected. ",
		r.Resolutions, r.ResolutionsPerS, "four caller processes of four OS users (root and credsoak1..3)", r.Checks, r.Statuses, r.HangUps, r.Refused)
	fmt.Fprintf(w, "Allowed requests failed: %d outside the CCP fault windows, %d inside.\n\n", r.FailedOutside, r.FailedInside)
	fmt.Fprintf(w, "| check (after the warm-up) | value | limit | result |\n|---|---|---|---|\n")
	for _, c := range r.Verdicts {
		res := "pass"
		if !c.Pass {
			res = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s: %s |\n", c.Name, rig.TrimFloat(c.Value), rig.TrimFloat(c.Limit), res, strings.ReplaceAll(c.Detail, "|", "/"))
	}
	fmt.Fprintf(w, "\n| figure | value |\n|---|---|\n")
	for _, f := range []struct {
		k string
		v any
	}{
		{"soak_rss_slope_mb_per_10min", r.RSSSlope},
		{"soak_rss_outside_heap_slope_mb_per_10min", r.RSSOutsideSlope},
		{"soak_heap_held_slope_mb_per_10min (in use, free not returned, stacks)", r.HeapHeldSlope},
		{"soak_heap_slope_mb_per_10min (live heap)", r.HeapSlope},
		{"soak_heap_slope_at_constant_ccp_conns_mb_per_10min (checked)", r.HeapSlopeAtConns},
		{"soak_heap_kb_per_ccp_conn", r.HeapKBPerCCPConn},
		{"soak_heap_inuse_slope_mb_per_10min", r.HeapInuseSlope},
		{"soak_goroutines_start / _end", fmt.Sprintf("%d / %d", r.GoroutinesStart, r.GoroutinesEnd)},
		{"soak_fds_start / _end", fmt.Sprintf("%d / %d", r.FDsStart, r.FDsEnd)},
		{"soak_ccp_conns_start / _end", fmt.Sprintf("%d / %d", r.CCPConnsStart, r.CCPConnsEnd)},
		{"soak_p99_first_us / _last_us", fmt.Sprintf("%s / %s", rig.TrimFloat(r.P99FirstUS), rig.TrimFloat(r.P99LastUS))},
		{"soak_direct_p99_first_us / _last_us (baseline)", fmt.Sprintf("%s / %s", rig.TrimFloat(r.DirectP99FirstUS), rig.TrimFloat(r.DirectP99LastUS))},
		{"soak_state_dir_max_bytes / bound", fmt.Sprintf("%d / %d", r.StateMaxBytes, r.StateBoundBytes)},
		{"soak_feed_poll_interval_s", r.PollS},
		{"soak_feed_changes_published / _picked_up", fmt.Sprintf("%d / %d", r.Published, r.PickedUp)},
		{"soak_feed_propagation_p50_s / _max_s", fmt.Sprintf("%s / %s", rig.TrimFloat(r.PropP50S), rig.TrimFloat(r.PropMaxS))},
		{"soak_feed_faults_injected / _refused_with_reason", fmt.Sprintf("%d / %d", r.Faults, r.FaultsRefused)},
		{"soak_feed_requests / _not_modified", fmt.Sprintf("%d / %d", r.Requests, r.NotModified)},
	} {
		fmt.Fprintf(w, "| `%s` | %v |\n", f.k, f.v)
	}
	fmt.Fprintf(w, "\nEvents during the run:")
	keys := make([]string, 0, len(r.Events))
	for k := range r.Events {
		if !strings.HasSuffix(k, " turn") && k != "store order" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for i, k := range keys {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, "%s %s %d", sep, k, r.Events[k])
	}
	fmt.Fprintf(w, ".\n\n")
	if len(r.Reasons) > 0 {
		fmt.Fprintf(w, "The feed's faults and the reason the agent gave in status for each (the last time it was served):\n\n| fault | the agent's last error |\n|---|---|\n")
		faults := make([]string, 0, len(r.Reasons))
		for k := range r.Reasons {
			faults = append(faults, k)
		}
		slices.Sort(faults)
		for _, k := range faults {
			fmt.Fprintf(w, "| %s | `%s` |\n", k, strings.ReplaceAll(r.Reasons[k], "|", "/"))
		}
		fmt.Fprintf(w, "\n")
	}
	fmt.Fprintf(w, "![The soak's series over time](soak.png)\n\n")
	fmt.Fprint(w, soakMethod)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- note: %s\n", n)
	}
}

// soakMethod explains how the soak measures and decides.
const soakMethod = `How it is measured: one agent (` + "`bin/credagent run --config`" + `, as root, non-dev mode: socket group,
policy by OS user) and two ` + "`bin/fakeccp serve`" + ` replicas. Callers are processes of their own, one per OS user
(root, credsoak1 and credsoak2 allowed, credsoak3 refused by the policy), each resolving, checking, asking the status
and sometimes hanging up in the middle of a request. Every event runs on its own clock: the application
certificate rotated by delivery every minute, the password rotated in the fakes every 20 s (and checked through
the agent within 3 s), the store re-delivered with the servers in the other order every 2 minutes, one replica
stopped for 15 s every 90 s, both replicas slow (1 s a request) for 10 s every 3 minutes, a config reload
(SIGHUP) every 30 s, a bad config every 5 minutes, junk every 5 s and a replayed delivery every 30 s. At speed N
every period is divided by N.

The agent also follows a feed (agent/feed) served by the harness over HTTPS (its CA pinned with feed.ca_file),
polled every 12 s (1.2 s at speed 10), written as credseal publish writes it (portal.Feed). Every other
certificate rotation goes through the feed instead of the inbox; every minute a new credential is published to
the feed with the revocation of an older one (three names in turn), and each change must show in the agent's
status within two polls and some slack (2.5 poll intervals, the request timeout and 5 s), and the new credential
resolve. Every 45 s the feed misbehaves in the next of twelve
ways (a 503 outage, connections reset, an HTML page with 200, a truncated manifest, one of an unknown signer,
one with a bad signature, one rolled back, an expired one, an oversized one, a slow drip past the 2 s request
timeout, a redirect to http, a delivery that does not match its manifest): the agent must report it in status
with its reason, keep the last good manifest and serve, and clear the error once the feed is healed.

Every sample interval (10 s; 2 s in the CI run) the callers hold back for 0.3-0.4 s and the sampler reads, with
nothing in flight: RSS and open descriptors (/proc), established connections to the replicas' ports
(/proc/net/tcp), the state directory's size, and goroutines and heap from the status endpoint's runtime figures
(privileged callers only). The checks, after the warm-up (2 minutes, scaled by the speed):
slopes by least squares over the samples, per 10 simulated minutes; the live heap (marked by the last GC) is
checked, not the heap in use, which swings with uncollected garbage. Each CCP connection the agent holds keeps
about 20 KB of buffers live, and the count swings with the load, with replicas stopped and started, and with
the clients that rotations and reloads replace until their last requests end, so the live heap is fitted on time and the
connections held together and its slope at a constant count is checked; the connections have their own check.
When they move too closely with time (correlation over 0.9) to be told apart, the slope over time alone is checked. The RSS is checked in two parts: the heap
the Go runtime holds (spans in use, freed spans not yet returned to the OS, goroutine stacks), whose leaks are the
live heap's, and the rest (code, runtime metadata, anything outside the Go heap), whose slope has the same limit.
The total RSS is checked as well when the warm-up lasts at least 2 minutes of real time: the runtime returns
freed spans over minutes, so in the compressed CI run a burst of load late in the run lifts the total for the
rest of it without anything leaking. Counts compare the lowest of the last three
samples with the highest sample of the warm-up (5 % more allowed), so that one unlucky sample neither hides a leak
nor fails a run. The agent may fill its CCP pools up to their cap at any time (16 connections per replica) without
leaking, so the connections' limit is at least that cap, and the goroutines and descriptors are counted without
the two goroutines (net/http's read and write loops) and the descriptor of each connection held over the warm-up
level.
A failure counts only outside the fault windows (a replica down, a slow period, each extended by 2 s). The state
directory must stay within its records, room for one being replaced, the registration and the rejected files at
their cap. Latency: the p99 of the first and the last 10 s window after the warm-up, counting only resolutions
outside the fault windows; it fails when the last is more than twice the first both on its own and relative to a
baseline measured in the same windows (the harness's own Go CCP client straight to the replicas), so that a noisy
neighbour that slows everything does not fail the run but an agent that slows down does. Once the callers have
stopped, the agent's memory is searched, as root could read it, for every password the fakes served: the copies
must stay within two per CCP connection the agent held (the most at any sample; the standard library's TLS record
buffer and HTTP read buffer, which the agent cannot wipe), however many resolutions were made.

`
