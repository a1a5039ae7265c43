package main

import (
	"encoding/json"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// goal is a target a figure must meet: Value compared with Op ("<", "<=",
// ">=" or ">").
type goal struct {
	Op    string
	Value float64
}

func (g *goal) String() string {
	if g == nil {
		return ""
	}
	return g.Op + " " + rig.TrimFloat(g.Value)
}

// met reports whether v meets the goal.
func (g *goal) met(v float64) bool {
	switch g.Op {
	case "<":
		return v < g.Value
	case "<=":
		return v <= g.Value
	case ">":
		return v > g.Value
	case ">=":
		return v >= g.Value
	}
	return false
}

// figure is one reported number with the baseline it is compared with,
// measured in the same run.
type figure struct {
	Key  string `json:"-"`
	Unit string `json:"unit"`
	// Value is the median of Rounds when there are rounds.
	Value        float64 `json:"value"`
	BaselineName string  `json:"baseline_name"`
	Baseline     float64 `json:"baseline"`
	// Ratio is Value / Baseline (0 when the baseline is 0).
	Ratio float64 `json:"ratio"`
	Goal  string  `json:"goal,omitempty"`
	// Met is set when there is a goal and the figure was measured.
	Met            *bool     `json:"met,omitempty"`
	Rounds         []float64 `json:"rounds,omitempty"`
	BaselineRounds []float64 `json:"baseline_rounds,omitempty"`
	// Spread is the lowest and highest of Rounds (and BaselineSpread of
	// BaselineRounds), when there are at least two: a change between runs
	// smaller than the spread within one run is noise.
	Spread         []float64 `json:"spread,omitempty"`
	BaselineSpread []float64 `json:"baseline_spread,omitempty"`
	Method         string    `json:"method"`
	// Error says why the figure could not be measured.
	Error string `json:"error,omitempty"`

	goal *goal
}

// finish rounds the numbers, computes the ratio and checks the goal.
func (f *figure) finish() {
	if f.Baseline != 0 {
		f.Ratio = rig.Round3(f.Value / f.Baseline)
	}
	f.Value, f.Baseline = rig.Round3(f.Value), rig.Round3(f.Baseline)
	for i := range f.Rounds {
		f.Rounds[i] = rig.Round3(f.Rounds[i])
	}
	for i := range f.BaselineRounds {
		f.BaselineRounds[i] = rig.Round3(f.BaselineRounds[i])
	}
	f.Spread, f.BaselineSpread = spread(f.Rounds), spread(f.BaselineRounds)
	if f.goal != nil {
		f.Goal = f.goal.String()
		if f.Error == "" {
			m := f.goal.met(f.Value)
			f.Met = &m
		}
	}
}

// spread is [min, max] of rounds, or nil for fewer than two rounds.
func spread(rounds []float64) []float64 {
	if len(rounds) < 2 {
		return nil
	}
	lo, hi := rounds[0], rounds[0]
	for _, v := range rounds[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return []float64{lo, hi}
}

// spreadString is "min–max" of a spread, or "" without one.
func spreadString(s []float64) string {
	if len(s) != 2 {
		return ""
	}
	return rig.TrimFloat(s[0]) + "–" + rig.TrimFloat(s[1])
}

// machine describes where the figures were measured.
type machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	Kernel    string  `json:"kernel"`
	GoVersion string  `json:"go_version"`
	LoadStart string  `json:"load_average_start"`
	LoadEnd   string  `json:"load_average_end"`
	TempFS    string  `json:"temp_filesystem,omitempty"`
	Duration  float64 `json:"run_seconds"`
	// StealPercent is the share of the machine's CPU time during the run
	// that the hypervisor gave to other guests (/proc/stat); -1 unknown.
	StealPercent float64 `json:"cpu_steal_percent"`
	// CPUIdle is how idle CPUs wait (rig.CPUIdle): what a wake-up costs.
	CPUIdle string `json:"cpu_idle,omitempty"`
}

func (m machine) String() string {
	steal := "unknown"
	if m.StealPercent >= 0 {
		steal = fmt.Sprintf("%.1f %%", m.StealPercent)
	}
	idle := ""
	if m.CPUIdle != "" {
		idle = "; " + m.CPUIdle
	}
	return fmt.Sprintf("%s, %d cores, Linux %s, %s; load average %s at start, %s at end; CPU time stolen by the hypervisor %s%s; %.0f s",
		m.CPU, m.Cores, m.Kernel, m.GoVersion, m.LoadStart, m.LoadEnd, steal, idle, m.Duration)
}

// report is everything a run produces.
type report struct {
	Time    time.Time
	Machine machine
	// Figures in the order they are printed; keystore figures have keys
	// "keystore_unwrap_us.<backend>".
	Figures []*figure
	Notes   []string
}

func (r *report) add(f *figure) *figure {
	r.Figures = append(r.Figures, f)
	return f
}

// MarshalJSON writes the figures as top-level members, with the keystore
// backends grouped under keystore_unwrap_us.
func (r *report) MarshalJSON() ([]byte, error) {
	out := map[string]any{
		"generated_at": r.Time.UTC().Format(time.RFC3339),
		"machine":      r.Machine,
	}
	if len(r.Notes) > 0 {
		out["notes"] = r.Notes
	}
	for _, f := range r.Figures {
		if group, sub, ok := strings.Cut(f.Key, "."); ok {
			m, _ := out[group].(map[string]*figure)
			if m == nil {
				m = map[string]*figure{}
				out[group] = m
			}
			m[sub] = f
			continue
		}
		out[f.Key] = f
	}
	return json.MarshalIndent(out, "", "  ")
}

func metString(f *figure) string {
	switch {
	case f.Error != "":
		return "ERROR"
	case f.Met == nil:
		return ""
	case *f.Met:
		return "yes"
	}
	return "NO"
}

// writeTable prints the figures as an aligned text table.
func writeTable(w io.Writer, r *report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tunit\trounds\tbaseline\trounds\tbaseline is\tratio\tgoal\tmet")
	for _, f := range r.Figures {
		if f.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t%s\t\t-\t\t%s\t-\t%s\tERROR: %s\n", f.Key, f.Unit, f.BaselineName, f.Goal, f.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Key, rig.TrimFloat(f.Value), f.Unit, spreadString(f.Spread),
			rig.TrimFloat(f.Baseline), spreadString(f.BaselineSpread), f.BaselineName, rig.TrimFloat(f.Ratio), f.Goal, metString(f))
	}
	tw.Flush()
}

// writeMarkdown writes bench/README.md: the table, the machine, the picture
// and how each figure is measured.
func writeMarkdown(w io.Writer, r *report) {
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Written by `make bench` (scripts/bench) on %s. Do not edit by hand: run `make bench` again.\n\n",
		r.Time.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "**Machine:** %s.\n\n", r.Machine)
	fmt.Fprintf(w, "Each figure is the median of several short rounds, interleaved with rounds of its baseline "+
		"in the same run, so that load from other processes on this shared machine moves both. "+
		"The ratio is value / baseline. The rounds columns give the spread of the rounds (the lowest and the highest "+
		"round's value): a difference between two runs smaller than that spread is noise.\n\n")
	fmt.Fprintln(w, "| figure | value | rounds | baseline | rounds | baseline is | ratio | goal | met |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|---:|---|---|")
	for _, f := range r.Figures {
		if f.Error != "" {
			fmt.Fprintf(w, "| `%s` | – | | – | | %s | – | %s | error: %s |\n", f.Key, f.BaselineName, mdEscape(f.Goal), mdEscape(f.Error))
			continue
		}
		fmt.Fprintf(w, "| `%s` | %s %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Key, rig.TrimFloat(f.Value), f.Unit, spreadString(f.Spread),
			rig.TrimFloat(f.Baseline), spreadString(f.BaselineSpread), f.BaselineName, rig.TrimFloat(f.Ratio), mdEscape(f.Goal), metString(f))
	}
	writeBreakdown(w, r)
	writeLoadCPU(w, r)
	fmt.Fprintf(w, "\n![Latency of one resolution, agent against direct](latency.png)\n\n")
	fmt.Fprintf(w, "## How each figure is measured\n\n")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "- `%s`: %s\n", f.Key, f.Method)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\n## Notes from this run\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "<", "&lt;")
}

// Markers around the summary in the project's README.md.
const (
	readmeBegin = "<!-- bench:begin -->"
	readmeEnd   = "<!-- bench:end -->"
)

// writeSummary writes the short form of the report that the project's
// README.md carries: the machine, the table, and the picture.
func writeSummary(w io.Writer, r *report, outDir string) {
	fmt.Fprintf(w, "Last run: %s on %s.\n\n", r.Time.UTC().Format("2006-01-02 15:04 MST"), r.Machine)
	fmt.Fprintln(w, "| figure | value (rounds) | baseline (same run) | ratio | goal | met |")
	fmt.Fprintln(w, "|---|---:|---|---:|---|---|")
	for _, f := range r.Figures {
		if f.Error != "" {
			fmt.Fprintf(w, "| `%s` | – | %s | – | %s | error: %s |\n", f.Key, f.BaselineName, mdEscape(f.Goal), mdEscape(f.Error))
			continue
		}
		v := rig.TrimFloat(f.Value) + " " + f.Unit
		if sp := spreadString(f.Spread); sp != "" {
			v += " (" + sp + ")"
		}
		fmt.Fprintf(w, "| `%s` | %s | %s (%s) | %s | %s | %s |\n", f.Key, v,
			rig.TrimFloat(f.Baseline), f.BaselineName, rig.TrimFloat(f.Ratio), mdEscape(f.Goal), metString(f))
	}
	fmt.Fprintf(w, "\n![Latency of one resolution, agent against direct](%s/latency.png)\n\n", outDir)
	fmt.Fprintf(w, "How each figure is measured, and the notes of the run: [%s/README.md](%s/README.md).\n", outDir, outDir)
}

// breakdownRows are the pieces of one resolution through the agent, in the
// order of a request's way, with what each is.
var breakdownRows = []struct{ key, what string }{
	{"resolve_agent_p50_us", "**the total**: one resolution through the agent"},
	{"resolve_direct_p50_us", "the CCP call alone: agent/ccp straight to the fake (in the harness's process)"},
	{"piece_localapi_p50_us", "the local API alone, in a process of its own (HTTP on the socket, checks, JSON, resolve with an instant CCP, the other process's wake-up)"},
	{"piece_resolve_us", "of which policy, rate limit and lookup (agent/resolve without CCP and audit)"},
	{"piece_audit_write_us", "the audit write (one record into a file)"},
	{"piece_identity_per_connection_us", "the caller's identity, once per connection (none per request on a kept connection)"},
	{"piece_rest_p50_us", "the rest: total − CCP − local API − audit (the agent woken by the CCP's answer, its threads' hand-offs)"},
}

// writeBreakdown writes where the agent's time goes: the pieces measured in
// the same run as the totals.
func writeBreakdown(w io.Writer, r *report) {
	byKey := r.byKey()
	if byKey["piece_localapi_p50_us"] == nil {
		return
	}
	fmt.Fprintf(w, "\n## Where the agent's time goes\n\n")
	fmt.Fprintf(w, "Measured in the same run as the totals, between the latency rounds (medians of the rounds, and their spread). "+
		"The pieces overlap as said; the rest is what none of them holds.\n\n")
	fmt.Fprintln(w, "| piece | p50 | rounds | share of the total |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	total := byKey["resolve_agent_p50_us"]
	for _, row := range breakdownRows {
		f := byKey[row.key]
		if f == nil || f.Error != "" {
			continue
		}
		share := ""
		if total != nil && total.Value > 0 {
			share = fmt.Sprintf("%.0f %%", 100*f.Value/total.Value)
		}
		fmt.Fprintf(w, "| %s (`%s`) | %s µs | %s | %s |\n", row.what, row.key, rig.TrimFloat(f.Value), spreadString(f.Spread), share)
	}
	for _, k := range []string{"agent_cpu_us_per_resolution", "agent_switches_per_resolution", "piece_localapi_cpu_us_per_resolution"} {
		if f := byKey[k]; f != nil && f.Error == "" {
			fmt.Fprintf(w, "\n`%s`: %s (rounds %s); %s: %s.", k, strings.TrimSpace(rig.TrimFloat(f.Value)+" "+f.Unit), spreadString(f.Spread), f.BaselineName, rig.TrimFloat(f.Baseline))
		}
	}
	fmt.Fprintln(w)
	writeInAgent(w, byKey)
	fmt.Fprint(w, wakeUps)
	fmt.Fprintf(w, "\nThe audit write is kept as it is: one `write` of one record, made before the answer leaves the agent. "+
		"So a record is in the kernel before the caller has its password, and an agent that crashes or is killed right after "+
		"answering has lost no record; a power loss or a kernel crash can lose the records not yet written back by the kernel "+
		"(there is no fsync per record, before or after). Batching records into fewer writes would have saved a few µs of a "+
		"resolution (`piece_audit_write_us`) but could not keep that guarantee for a sequential caller.\n")
}

// wakeUps is what the machine's idle policy does to the figures, measured
// by hand (the harness does not change kernel settings).
const wakeUps = `
Most of what lies outside agent/resolve is waiting to be woken. A resolution through the agent wakes a sleeping
process four times (the agent for the request, the fake, the agent for CCP's answer, the caller), where the direct
call wakes two; what a wake-up costs is the machine's, not the agent's. The machine line says how its idle CPUs wait.
This project's CI machines are KVM guests whose kernel is booted with guest halt polling off
(` + "`haltpoll.guest_halt_poll_ns=0`" + `): an idle vCPU halts at once, and waking it is a VM exit and an interrupt
through the hypervisor. Measured by hand on two of them on 2026-12-01, ` + "`bin/bench -only latency -profile never`" + `, two runs
of each setting in turn, changing only ` + "`/sys/module/haltpoll/parameters/guest_halt_poll_ns`" + ` (as root; it was put back):

| machine | guest halt polling | resolve_direct_p50_us | resolve_agent_p50_us | agent_overhead_p50_us | piece_localapi_p50_us | piece_outside_resolve_mean_us |
|---|---|---:|---:|---:|---:|---:|
| AMD EPYC, 6.18.44-fc-v595 | off (0 ns, as booted) | 188.8, 187.5 | 309.5, 306.3 | 121.2, 117.6 | 31.5, 33.6 | 111.9, 109.7 |
| | 200 µs (the kernel's default) | 128.2, 131.5 | 199.5, 206.4 | 70.9, 75.1 | 29.6, 29.5 | 75.2, 78.3 |
| Intel Xeon, 6.18.44-fc-v669 | off (0 ns, as booted) | 270.6, 305.6 | 462, 454.1 | 191.5, 164.9 | 26.6, 35.5 | 160.7, 155.3 |
| | 200 µs (the kernel's default) | 210.9, 153.1 | 271.2, 258.5 | 80.2, 112.1 | 34.5, 27.9 | 94.3, 95.7 |

The local API alone, which never sleeps long enough to halt, does not move; the agent's overhead loses about 45 µs
on the first machine and about 80 µs on the second. The agent could only avoid those wake-ups by spinning on its
sockets instead of sleeping, which would spend a core of every fleet machine to save tens of microseconds per
resolution: it does not.

Each time the agent goes from idle to busy, the Go runtime also wakes its monitor thread (sysmon), which sleeps
while every P is idle; a sequential resolution does that twice. Measured by hand on the second machine the same
day, three runs of each in turn, with only the agent started as
` + "`GODEBUG=schedtrace=3600000`" + ` (a setting that, as a side effect, keeps sysmon polling every 10 ms or
sooner instead of sleeping until it is woken; a debugging setting, not one to run with):

| agent | agent_switches_per_resolution | agent_cpu_us_per_resolution | resolve_agent_p50_us | agent_overhead_p50_us |
|---|---:|---:|---:|---:|
| as built | 6.26, 6.43, 6.15 | 281.6, 288.1, 273.9 | 450, 485.1, 435.3 | 81.5, 189.1, 179.1 |
| sysmon never asleep | 2.64, 2.75, 2.71 | 256.7, 230.8, 243.2 | 487.1, 459.1, 489.5 | 176.5, 147.7, 208.9 |

Sysmon's wake-ups are more than half of the agent's context switches and about an eighth of its CPU per resolution,
but they are not on the resolution's path: the latency does not move. They are not kept away either: a sysmon that
never sleeps wakes an idle agent a hundred times a second, every hour of the day, on every fleet machine.
`

// inAgentRows are the rows of the breakdown inside the agent, in order.
var inAgentRows = []struct{ key, what string }{
	{"resolve_agent_mean_us", "**the total**: one resolution through the agent, as the caller times it"},
	{"piece_resolve_in_agent_mean_us", "agent/resolve inside the agent: lookup, policy, the CCP fetch"},
	{"piece_ccp_in_agent_mean_us", "of which the CCP attempt inside the agent (agent/ccp's own timing)"},
	{"piece_resolve_beyond_ccp_mean_us", "of which around the CCP attempt (policy, lookup, the fetch's goroutine)"},
	{"piece_outside_resolve_mean_us", "outside agent/resolve: the caller's client, the socket, the local API, the audit write, both processes' wake-ups"},
}

// writeInAgent writes the breakdown from the agent's own timings (means).
func writeInAgent(w io.Writer, byKey map[string]*figure) {
	total := byKey["resolve_agent_mean_us"]
	if total == nil || total.Error != "" || byKey["piece_ccp_in_agent_mean_us"] == nil {
		return
	}
	fmt.Fprintf(w, "\nThe same rounds timed from inside the agent, by its own metrics (`/metrics`, read before and after each agent "+
		"round). The agent's histograms are too coarse for a p50 at this scale, so these are means (medians of the rounds' means).\n\n")
	fmt.Fprintln(w, "| piece | mean | rounds | share of the total | baseline | baseline is |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|")
	for _, row := range inAgentRows {
		f := byKey[row.key]
		if f == nil || f.Error != "" {
			continue
		}
		share := ""
		if total.Value > 0 {
			share = fmt.Sprintf("%.0f %%", 100*f.Value/total.Value)
		}
		fmt.Fprintf(w, "| %s (`%s`) | %s µs | %s | %s | %s µs | %s |\n", row.what, row.key, rig.TrimFloat(f.Value), spreadString(f.Spread),
			share, rig.TrimFloat(f.Baseline), f.BaselineName)
	}
}

// writeLoadCPU writes where the throughput goes: each process's CPU time
// per resolution under the 64 callers, through the agent and direct.
func writeLoadCPU(w io.Writer, r *report) {
	byKey := r.byKey()
	total, agent, callers, fake := byKey["load_cpu_us_per_resolution"], byKey["load_agent_cpu_us_per_resolution"],
		byKey["load_callers_cpu_us_per_resolution"], byKey["load_fake_cpu_us_per_resolution"]
	if total == nil || agent == nil || callers == nil || fake == nil {
		return
	}
	fmt.Fprintf(w, "\n## Where the throughput goes\n\n")
	fmt.Fprintf(w, "CPU time per resolution of the three processes that share the cores in the throughput rounds "+
		"(64 callers; medians of the rounds, and their spread). With the cores saturated, each path's throughput is about the cores' "+
		"time divided by its total, so the throughput ratio is about the inverse of the totals' ratio.\n\n")
	fmt.Fprintln(w, "| process | through the agent | rounds | direct | rounds |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	row := func(what string, v float64, vs []float64, b string, bs []float64) {
		if b == "" {
			b = "none"
		}
		fmt.Fprintf(w, "| %s | %s µs | %s | %s | %s |\n", what, rig.TrimFloat(v), spreadString(vs), b, spreadString(bs))
	}
	row("the harness: the 64 callers and their client (agent/localapi/client through the agent, agent/ccp direct)",
		callers.Value, callers.Spread, rig.TrimFloat(agent.Baseline)+" µs", agent.BaselineSpread)
	row("the agent", agent.Value, agent.Spread, "none", nil)
	row("the fake CCP", fake.Value, fake.Spread, rig.TrimFloat(fake.Baseline)+" µs", fake.BaselineSpread)
	row("**all three**", total.Value, total.Spread, rig.TrimFloat(total.Baseline)+" µs", total.BaselineSpread)
	if agent.Baseline > 0 {
		fmt.Fprintf(w, "\nThe agent spends %s µs per resolution where the same CCP client alone spends %s: about %s µs is what the "+
			"agent adds under load (the local API's HTTP and JSON, policy, audit, and its goroutines' hand-offs), and the callers' "+
			"side of the local API %s µs more.\n", rig.TrimFloat(agent.Value), rig.TrimFloat(agent.Baseline),
			rig.TrimFloat(agent.Value-agent.Baseline), rig.TrimFloat(callers.Value))
	}
}

// byKey indexes the report's figures by key.
func (r *report) byKey() map[string]*figure {
	m := make(map[string]*figure, len(r.Figures))
	for _, f := range r.Figures {
		m[f.Key] = f
	}
	return m
}
