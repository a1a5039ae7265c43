package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/credagent/credagent/scripts/internal/rig"
)

// Kinds of record: what a caller did.
const (
	kindResolve = 'r' // POST /v1/resolve, allowed by the policy
	kindCheck   = 'c' // POST /v1/check, allowed
	kindStatus  = 's' // GET /v1/status
	kindHangUp  = 'd' // a caller that hangs up in the middle of a request
	kindRefused = 'x' // a resolve the policy must refuse (403)
	kindDirect  = 'b' // the harness's own Go CCP client straight to the fake: the latency baseline
)

// record is one request, as a caller reported it.
type record struct {
	start int64 // µs since the run's epoch
	dur   int32 // µs
	kind  byte
	// class is "" for the expected outcome, else what happened instead
	// (the error class, or "served" for a resolve that should have been
	// refused).
	class string
}

func (r record) end() int64 { return r.start + int64(r.dur) }

// window is a stretch of the run with a CCP fault injected (a replica
// stopped, a slow period): failures inside are allowed, and its latencies
// are left out of the p99 check.
type window struct {
	From float64 `json:"from_s"`
	To   float64 `json:"to_s"`
	What string  `json:"what"`
}

// sample is what the sampler read at one instant (T seconds into the run),
// with the latencies of the interval that ended there.
type sample struct {
	T           float64 `json:"t_s"`
	RSSMB       float64 `json:"rss_mb"`
	HeapInuseMB float64 `json:"heap_inuse_mb"`
	HeapLiveMB  float64 `json:"heap_live_mb"`
	// HeapHeldMB is the heap the Go runtime keeps resident: spans in use,
	// free spans not yet returned to the OS, and goroutine stacks.
	HeapHeldMB  float64 `json:"heap_held_mb"`
	Goroutines  int     `json:"goroutines"`
	FDs         int     `json:"fds"`
	CCPConns    int     `json:"ccp_conns"`
	FeedConns   int     `json:"feed_conns"` // connections to the feed's server (not checked: 0 to 2)
	StateBytes  int64   `json:"state_dir_bytes"`
	StateBound  int64   `json:"state_dir_bound_bytes"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	Resolutions int     `json:"resolutions"`
	Failed      int     `json:"failed"`
}

// feedFigures are the feed's figures in soak.json.
type feedFigures struct {
	PollS         float64           `json:"soak_feed_poll_interval_s"`
	Published     int               `json:"soak_feed_changes_published"`
	PickedUp      int               `json:"soak_feed_changes_picked_up"`
	PropP50S      float64           `json:"soak_feed_propagation_p50_s"`
	PropMaxS      float64           `json:"soak_feed_propagation_max_s"`
	Faults        int               `json:"soak_feed_faults_injected"`
	FaultsRefused int               `json:"soak_feed_faults_refused_with_reason"`
	Reasons       map[string]string `json:"soak_feed_fault_reasons,omitempty"`
	Requests      int               `json:"soak_feed_requests"`
	NotModified   int               `json:"soak_feed_not_modified"`
	Failures      []string          `json:"soak_feed_failures,omitempty"`

	props []float64 // seconds from publish to the agent's status showing it
}

// params are the run's time scale.
type params struct {
	Duration time.Duration
	Speed    float64       // periods divided by this; limits per simulated time
	Warmup   time.Duration // real time
	Every    time.Duration // sample interval
	// LatWindow is the span of the first and last latency windows the p99
	// check compares.
	LatWindow time.Duration
	// Grace extends each fault window: a request that ends within it may
	// still fail because of the fault (a retry after a refused connection).
	Grace time.Duration
	// CCPConnCap is the most CCP connections the agent may hold without
	// leaking: its pool's cap per server times the servers.
	CCPConnCap int
}

// check is one pass/fail criterion.
type check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Pass   bool    `json:"pass"`
	Detail string  `json:"detail"`
}

// Limits of the checks (issue 18).
const (
	slopeLimitMB = 2.0 // MB per 10 (simulated) minutes
	// maxCollinear is how closely the CCP connections held may follow
	// time before the live heap's slope is no longer fitted on both.
	maxCollinear = 0.9
	// rssSettle is the real warm-up the total RSS needs before its slope
	// says anything: see analyze.
	rssSettle   = 2 * time.Minute
	countGrowth = 1.05 // end over warm-up level
	// goroutinesPerConn is what an HTTP/1.1 connection of net/http's
	// Transport runs: its read loop and its write loop.
	goroutinesPerConn = 2
	p99Growth         = 2.0 // last over first latency window
	minLatSamples     = 200 // clean resolutions a latency window needs
	endSamples        = 3   // the end level is the least of the last ones
	mbBytes           = 1 << 20
	failuresAllowed   = 0
)

// results are the figures of a run, written to bench/soak.json.
type results struct {
	Minutes          float64        `json:"soak_minutes"`
	Speed            float64        `json:"soak_speed"`
	SimulatedMinutes float64        `json:"soak_simulated_minutes"`
	Resolutions      int            `json:"soak_resolutions"`
	ResolutionsPerS  float64        `json:"soak_resolutions_per_s"`
	Checks           int            `json:"soak_checks"`
	Statuses         int            `json:"soak_statuses"`
	HangUps          int            `json:"soak_hang_ups"`
	Refused          int            `json:"soak_refused_as_expected"`
	FailedOutside    int            `json:"soak_failed_outside_outages"`
	FailedInside     int            `json:"soak_failed_inside_outages"`
	FailureClasses   map[string]int `json:"soak_failure_classes,omitempty"`
	FirstFailures    []string       `json:"soak_first_failures_outside,omitempty"`

	RSSSlope        float64 `json:"soak_rss_slope_mb_per_10min"`
	RSSOutsideSlope float64 `json:"soak_rss_outside_heap_slope_mb_per_10min"`
	HeapHeldSlope   float64 `json:"soak_heap_held_slope_mb_per_10min"`
	RSSChecked      bool    `json:"soak_rss_slope_checked"`
	HeapSlope       float64 `json:"soak_heap_slope_mb_per_10min"`
	// HeapSlopeAtConns is the live heap's slope at a constant count of
	// CCP connections (fitted on time and the connections held, each of
	// which holds its TLS and HTTP buffers); HeapSlope when the two
	// cannot be told apart (HeapConnsFitted false).
	HeapSlopeAtConns float64 `json:"soak_heap_slope_at_constant_ccp_conns_mb_per_10min"`
	HeapKBPerCCPConn float64 `json:"soak_heap_kb_per_ccp_conn"`
	HeapConnsFitted  bool    `json:"soak_heap_ccp_conns_fitted"`
	HeapInuseSlope   float64 `json:"soak_heap_inuse_slope_mb_per_10min"`
	GoroutinesStart  int     `json:"soak_goroutines_start"`
	GoroutinesEnd    int     `json:"soak_goroutines_end"`
	FDsStart         int     `json:"soak_fds_start"`
	FDsEnd           int     `json:"soak_fds_end"`
	CCPConnsStart    int     `json:"soak_ccp_conns_start"`
	CCPConnsEnd      int     `json:"soak_ccp_conns_end"`
	StateMaxBytes    int64   `json:"soak_state_dir_max_bytes"`
	StateBoundBytes  int64   `json:"soak_state_dir_bound_bytes"`

	P99FirstUS       float64 `json:"soak_p99_first_us"`
	P99LastUS        float64 `json:"soak_p99_last_us"`
	DirectP99FirstUS float64 `json:"soak_direct_p99_first_us"`
	DirectP99LastUS  float64 `json:"soak_direct_p99_last_us"`
	P99FirstWindowS  float64 `json:"soak_p99_first_window_s"`
	P99LastWindowS   float64 `json:"soak_p99_last_window_s"`

	feedFigures

	Passed   bool              `json:"soak_passed"`
	Verdicts []check           `json:"checks"`
	Events   map[string]int    `json:"events"`
	Windows  []window          `json:"fault_windows"`
	Series   []sample          `json:"series"`
	Machine  map[string]string `json:"machine"`
	Notes    []string          `json:"notes,omitempty"`

	warmup float64 // seconds, for the chart
}

// slope is the least-squares slope of v over t, per second; 0 for fewer
// than two points.
func slope(t, v []float64) float64 {
	n := float64(len(t))
	if len(t) < 2 {
		return 0
	}
	var st, sv float64
	for i := range t {
		st += t[i]
		sv += v[i]
	}
	mt, mv := st/n, sv/n
	var num, den float64
	for i := range t {
		num += (t[i] - mt) * (v[i] - mv)
		den += (t[i] - mt) * (t[i] - mt)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// heapDetail explains the live heap check: how its slope was fitted, and
// the figures it was not judged by.
func heapDetail(r *results) string {
	fit := fmt.Sprintf("fitted on time and the CCP connections held (%.1f KB per connection); %.3f MB per 10 min without them", r.HeapKBPerCCPConn, r.HeapSlope)
	if !r.HeapConnsFitted {
		fit = "the CCP connections held did not vary independently of time, so the slope over time alone"
	}
	return fmt.Sprintf("heap marked live by the last GC, %s; heap in use (with uncollected garbage) %.3f MB per 10 min, not checked", fit, r.HeapInuseSlope)
}

// slopeGiven fits v = a + b·t + k·c by least squares and returns b (per
// second) and k: the slope of v over t at a constant c, and what each unit
// of c adds. ok is false when c does not vary, or moves with t so closely
// (|correlation| over maxCollinear) that the two cannot be told apart.
func slopeGiven(t, c, v []float64) (b, k float64, ok bool) {
	n := float64(len(t))
	if len(t) < 3 {
		return 0, 0, false
	}
	var mt, mc, mv float64
	for i := range t {
		mt, mc, mv = mt+t[i], mc+c[i], mv+v[i]
	}
	mt, mc, mv = mt/n, mc/n, mv/n
	var stt, scc, stc, stv, scv float64
	for i := range t {
		dt, dc, dv := t[i]-mt, c[i]-mc, v[i]-mv
		stt, scc, stc = stt+dt*dt, scc+dc*dc, stc+dt*dc
		stv, scv = stv+dt*dv, scv+dc*dv
	}
	if stt == 0 || scc == 0 || math.Abs(stc)/math.Sqrt(stt*scc) > maxCollinear {
		return 0, 0, false
	}
	det := stt*scc - stc*stc
	return (scc*stv - stc*scv) / det, (stt*scv - stc*stv) / det, true
}

// inWindow reports whether [from, to] (seconds) meets a fault window
// extended by grace.
func inWindow(ws []window, from, to, grace float64) bool {
	for _, w := range ws {
		if from <= w.To+grace && to >= w.From {
			return true
		}
	}
	return false
}

// levels returns the warm-up level (the highest sample up to the end of
// the warm-up, or the first sample) and the end level (the lowest of the
// last endSamples samples) of a count. A leak grows steadily, so it shows
// in the least of the last samples; a burst of requests in flight at one
// sample does not.
func levels(ss []sample, warm float64, f func(sample) int) (start, end int) {
	if len(ss) == 0 {
		return 0, 0
	}
	start = f(ss[0])
	for _, s := range ss {
		if s.T <= warm {
			start = max(start, f(s))
		}
	}
	end = math.MaxInt
	for _, s := range ss[max(0, len(ss)-endSamples):] {
		end = min(end, f(s))
	}
	return start, end
}

// analyze computes the series' latencies, the figures and the verdicts.
func analyze(p params, ss []sample, recs []record, ws []window, fd feedFigures) *results {
	r := &results{
		Minutes: p.Duration.Minutes(), Speed: p.Speed, SimulatedMinutes: p.Duration.Minutes() * p.Speed,
		FailureClasses: map[string]int{}, Windows: ws, warmup: p.Warmup.Seconds(), feedFigures: fd,
	}
	warm := p.Warmup.Seconds()
	grace := p.Grace.Seconds()
	const us = 1e6

	// Per-interval latencies and counts, by the end of each request.
	slices.SortFunc(recs, func(a, b record) int { return int(a.end() - b.end()) })
	j := 0
	for i := range ss {
		var lat []time.Duration
		for ; j < len(recs) && float64(recs[j].end())/us <= ss[i].T; j++ {
			rec := recs[j]
			if rec.kind == kindResolve {
				ss[i].Resolutions++
				if rec.class == "" {
					lat = append(lat, time.Duration(rec.dur)*time.Microsecond)
				}
			}
			if rec.class != "" && rec.kind != kindDirect {
				ss[i].Failed++
			}
		}
		slices.Sort(lat)
		ss[i].P50us = rig.Round3(rig.US(rig.Percentile(lat, 50)))
		ss[i].P99us = rig.Round3(rig.US(rig.Percentile(lat, 99)))
	}

	// Counts and failures over the whole run.
	for _, rec := range recs {
		switch rec.kind {
		case kindResolve:
			r.Resolutions++
		case kindCheck:
			r.Checks++
		case kindStatus:
			r.Statuses++
		case kindHangUp:
			r.HangUps++
		case kindRefused:
			if rec.class == "" {
				r.Refused++
			}
		}
		if rec.class == "" || rec.kind == kindDirect {
			continue
		}
		r.FailureClasses[string(rec.kind)+":"+rec.class]++
		if inWindow(ws, float64(rec.start)/us, float64(rec.end())/us, grace) {
			r.FailedInside++
			continue
		}
		r.FailedOutside++
		if len(r.FirstFailures) < 10 {
			r.FirstFailures = append(r.FirstFailures, fmt.Sprintf("t=%.3fs %c %s after %dµs", float64(rec.start)/us, rec.kind, rec.class, rec.dur))
		}
	}
	r.ResolutionsPerS = rig.Round3(float64(r.Resolutions) / p.Duration.Seconds())

	// Slopes after the warm-up, per 10 simulated minutes.
	var t, rss, outside, held, live, inuse, conns []float64
	for _, s := range ss {
		if s.T < warm {
			continue
		}
		t = append(t, s.T)
		rss = append(rss, s.RSSMB)
		outside = append(outside, s.RSSMB-s.HeapHeldMB)
		held = append(held, s.HeapHeldMB)
		live = append(live, s.HeapLiveMB)
		inuse = append(inuse, s.HeapInuseMB)
		conns = append(conns, float64(s.CCPConns))
	}
	per10 := 600 / p.Speed
	r.RSSSlope = rig.Round3(slope(t, rss) * per10)
	r.RSSOutsideSlope = rig.Round3(slope(t, outside) * per10)
	r.HeapHeldSlope = rig.Round3(slope(t, held) * per10)
	r.HeapSlope = rig.Round3(slope(t, live) * per10)
	r.HeapInuseSlope = rig.Round3(slope(t, inuse) * per10)
	// Each CCP connection the agent holds keeps its TLS and HTTP buffers
	// live (about 20 KB), and how many it holds swings with the load, with
	// replicas stopped and started, and with the clients that rotations
	// and reloads replace until their last requests end; in a one-minute
	// run a late swing weighs on the slope. The connections have their own
	// check, so the live heap is judged at a constant count of them: what
	// grows with time alone.
	r.HeapSlopeAtConns = r.HeapSlope
	if b, k, ok := slopeGiven(t, conns, live); ok {
		r.HeapSlopeAtConns, r.HeapKBPerCCPConn, r.HeapConnsFitted = rig.Round3(b*per10), rig.Round3(k*1000), true
	}
	// The RSS is split in two, each with its own check: the heap the Go
	// runtime holds, whose leaks are the live heap's (garbage and freed
	// spans come and go with the load), and the rest (code, runtime
	// metadata, anything outside the Go heap), checked for its own slope.
	// The total is checked too once the warm-up has lasted long enough
	// in real time for the heap's high-water mark to settle: the runtime
	// returns freed spans to the OS over minutes, so a burst of load late
	// in a compressed run lifts the total for the rest of it (a one-minute
	// run failed at 3.1 MB per 10 simulated min while the machine's load
	// rose threefold, with the live heap at 1.26 and the rest flat).
	r.RSSChecked = p.Warmup >= rssSettle

	// The agent may open CCP connections up to its pools' cap at any time
	// (a burst of callers, a failover to the other replica) without
	// leaking, and each is a descriptor and two goroutines (net/http's
	// read and write loops). So the connections are judged against the
	// cap as well as their warm-up level, and the goroutines and
	// descriptors without those of the connections held over it.
	r.CCPConnsStart, r.CCPConnsEnd = levels(ss, warm, func(s sample) int { return s.CCPConns })
	overConns := func(s sample) int { return max(0, s.CCPConns-r.CCPConnsStart) }
	r.GoroutinesStart, r.GoroutinesEnd = levels(ss, warm, func(s sample) int { return s.Goroutines - goroutinesPerConn*overConns(s) })
	r.FDsStart, r.FDsEnd = levels(ss, warm, func(s sample) int { return s.FDs - overConns(s) })

	stateOK := true
	var stateDetail string
	for _, s := range ss {
		if s.StateBytes > r.StateMaxBytes {
			r.StateMaxBytes = s.StateBytes
		}
		r.StateBoundBytes = max(r.StateBoundBytes, s.StateBound)
		if s.StateBytes > s.StateBound && stateOK {
			stateOK = false
			stateDetail = fmt.Sprintf("at %.0f s the state directory held %d bytes, more than the %d its records and the capped rejected files need", s.T, s.StateBytes, s.StateBound)
		}
	}

	// The p99 check: the first and the last latency window after the
	// warm-up with enough resolutions outside the fault windows.
	type win struct {
		from, to    float64
		agent, base []time.Duration
	}
	var wins []win
	L := p.LatWindow.Seconds()
	for from := warm; from+L <= p.Duration.Seconds()+1e-9; from += L {
		wins = append(wins, win{from: from, to: from + L})
	}
	for _, rec := range recs {
		if rec.class != "" || (rec.kind != kindResolve && rec.kind != kindDirect) {
			continue
		}
		s, e := float64(rec.start)/us, float64(rec.end())/us
		if e < warm || inWindow(ws, s, e, grace) {
			continue
		}
		i := int((e - warm) / L)
		if i < 0 || i >= len(wins) {
			continue
		}
		d := time.Duration(rec.dur) * time.Microsecond
		if rec.kind == kindResolve {
			wins[i].agent = append(wins[i].agent, d)
		} else {
			wins[i].base = append(wins[i].base, d)
		}
	}
	first, last := -1, -1
	for i, w := range wins {
		if len(w.agent) >= minLatSamples {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return rig.Round3(rig.US(rig.Percentile(ds, 99)))
	}
	latCheck := check{Name: "p99 of the last latency window, over the first after the warm-up", Limit: p99Growth}
	switch {
	case first < 0 || first == last:
		latCheck.Detail = "fewer than two latency windows with enough resolutions outside the fault windows"
	default:
		r.P99FirstUS, r.P99LastUS = p99(wins[first].agent), p99(wins[last].agent)
		r.DirectP99FirstUS, r.DirectP99LastUS = p99(wins[first].base), p99(wins[last].base)
		r.P99FirstWindowS, r.P99LastWindowS = wins[first].from, wins[last].from
		raw := r.P99LastUS / r.P99FirstUS
		latCheck.Value = rig.Round3(raw)
		norm := raw
		if r.DirectP99FirstUS > 0 && r.DirectP99LastUS > 0 {
			norm = raw / (r.DirectP99LastUS / r.DirectP99FirstUS)
		}
		// Both the agent's own ratio and the ratio relative to the
		// baseline measured in the same windows must exceed the limit: a
		// neighbour that slows the machine slows the baseline too.
		latCheck.Pass = !(raw > p99Growth && norm > p99Growth)
		latCheck.Detail = fmt.Sprintf("agent p99 %.0f µs (window at %.0f s) -> %.0f µs (at %.0f s), x%.2f; direct-to-CCP baseline p99 %.0f -> %.0f µs; relative to the baseline x%.2f",
			r.P99FirstUS, r.P99FirstWindowS, r.P99LastUS, r.P99LastWindowS, raw, r.DirectP99FirstUS, r.DirectP99LastUS, norm)
	}
	if first < 0 || first == last {
		latCheck.Pass = false
	}

	growth := func(name string, start, end int, floor float64, why string) check {
		lim := max(float64(start)*countGrowth, floor)
		return check{Name: name + " at the end, over the warm-up level", Value: float64(end), Limit: rig.Round3(lim), Pass: float64(end) <= lim,
			Detail: fmt.Sprintf("warm-up level %d (highest sample in the warm-up), end %d (lowest of the last %d samples)%s", start, end, endSamples, why)}
	}
	lessConns := fmt.Sprintf("; each sample less %%s per CCP connection held over the warm-up level (%d)", r.CCPConnsStart)
	rssDetail := fmt.Sprintf("checked: the warm-up lasted %v", p.Warmup)
	if !r.RSSChecked {
		rssDetail = fmt.Sprintf("not checked: a warm-up of %v is too short for the heap's high-water mark to settle (%v needed)", p.Warmup, rssSettle)
	}
	var verdicts []check
	if r.RSSChecked {
		verdicts = append(verdicts, check{Name: "RSS slope after the warm-up (MB per 10 simulated min)", Value: r.RSSSlope, Limit: slopeLimitMB, Pass: r.RSSSlope <= slopeLimitMB,
			Detail: fmt.Sprintf("least squares over %d samples; of which the Go heap held %.3f, the rest %.3f", len(t), r.HeapHeldSlope, r.RSSOutsideSlope)})
	}
	r.Verdicts = append(verdicts, []check{
		{Name: "RSS outside the Go heap, slope after the warm-up (MB per 10 simulated min)", Value: r.RSSOutsideSlope, Limit: slopeLimitMB, Pass: r.RSSOutsideSlope <= slopeLimitMB,
			Detail: fmt.Sprintf("RSS less the heap the runtime holds (in use, freed but not returned, stacks: %.3f MB per 10 min); total RSS %.3f MB per 10 min, %s", r.HeapHeldSlope, r.RSSSlope, rssDetail)},
		{Name: "live heap slope after the warm-up, at a constant count of CCP connections (MB per 10 simulated min)", Value: r.HeapSlopeAtConns, Limit: slopeLimitMB, Pass: r.HeapSlopeAtConns <= slopeLimitMB,
			Detail: heapDetail(r)},
		growth("goroutines", r.GoroutinesStart, r.GoroutinesEnd, 0, fmt.Sprintf(lessConns, "two")),
		growth("open descriptors", r.FDsStart, r.FDsEnd, 0, fmt.Sprintf(lessConns, "one")),
		growth("connections to CCP", r.CCPConnsStart, r.CCPConnsEnd, float64(p.CCPConnCap),
			fmt.Sprintf("; the limit is at least the pools' cap, %d", p.CCPConnCap)),
		{Name: "allowed requests failed outside the CCP fault windows", Value: float64(r.FailedOutside), Limit: failuresAllowed, Pass: r.FailedOutside <= failuresAllowed,
			Detail: fmt.Sprintf("%d failed inside the windows (allowed); windows extended by %v", r.FailedInside, p.Grace)},
		{Name: "state directory within the size of what it must hold", Value: float64(r.StateMaxBytes), Limit: float64(r.StateBoundBytes), Pass: stateOK,
			Detail: cmp.Or(stateDetail, "bytes: the largest sample, and the bound (records in force, one being replaced, the registration, the rejected files at their cap)")},
		latCheck,
		feedCheck(fd),
	}...)
	r.Passed = true
	for _, c := range r.Verdicts {
		r.Passed = r.Passed && c.Pass
	}
	r.Series = ss
	return r
}

// addCheck adds a verdict measured outside analyze.
func (r *results) addCheck(c check) {
	r.Verdicts = append(r.Verdicts, c)
	r.Passed = r.Passed && c.Pass
}

// feedCheck is the feed's verdict: every change published to the feed was
// picked up and served, every fault the feed served was refused with its
// reason while the last good state stayed in force and cleared once the
// feed was healed, and at least one of each happened.
func feedCheck(fd feedFigures) check {
	missed := (fd.Published - fd.PickedUp) + (fd.Faults - fd.FaultsRefused)
	bad := max(missed, len(fd.Failures))
	c := check{Name: "feed changes not picked up, faults not refused with their reason", Value: float64(bad), Limit: 0,
		Pass: bad == 0 && fd.Published > 0 && fd.Faults > 0,
		Detail: fmt.Sprintf("%d of %d changes picked up (propagation p50 %.2f s, max %.2f s; poll every %.1f s); %d of %d faults refused with their reason",
			fd.PickedUp, fd.Published, fd.PropP50S, fd.PropMaxS, fd.PollS, fd.FaultsRefused, fd.Faults)}
	if fd.Published == 0 || fd.Faults == 0 {
		c.Detail += "; the run was too short for a feed change and a feed fault"
	}
	if len(fd.Failures) > 0 {
		c.Detail += "; first: " + fd.Failures[0]
	}
	return c
}
