package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSlope(t *testing.T) {
	tests := []struct {
		name string
		t, v []float64
		want float64
	}{
		{"rising", []float64{0, 10, 20, 30}, []float64{1, 2, 3, 4}, 0.1},
		{"flat", []float64{0, 10, 20}, []float64{5, 5, 5}, 0},
		{"noisy flat", []float64{0, 10, 20, 30}, []float64{5, 6, 5, 6}, 0.02},
		{"one point", []float64{3}, []float64{7}, 0},
		{"same time", []float64{3, 3}, []float64{1, 2}, 0},
	}
	for _, tt := range tests {
		if got := slope(tt.t, tt.v); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: slope = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLevels(t *testing.T) {
	ss := []sample{{T: 10, Goroutines: 50}, {T: 20, Goroutines: 70}, {T: 30, Goroutines: 60},
		{T: 40, Goroutines: 90}, {T: 50, Goroutines: 65}, {T: 60, Goroutines: 80}}
	start, end := levels(ss, 25, func(s sample) int { return s.Goroutines })
	if start != 70 || end != 65 {
		t.Errorf("levels = %d, %d; want 70 (highest in the warm-up), 65 (lowest of the last three)", start, end)
	}
	if s, e := levels(nil, 25, func(s sample) int { return s.Goroutines }); s != 0 || e != 0 {
		t.Errorf("levels of nothing = %d, %d", s, e)
	}
}

func TestInWindow(t *testing.T) {
	ws := []window{{From: 10, To: 20}}
	tests := []struct {
		from, to float64
		want     bool
	}{
		{5, 9, false}, {5, 10, true}, {15, 16, true}, {21, 21.5, true}, {22.1, 23, false}, {0, 100, true},
	}
	for _, tt := range tests {
		if got := inWindow(ws, tt.from, tt.to, 2); got != tt.want {
			t.Errorf("inWindow(%v, %v) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

// world is a synthetic run for analyze: 60 samples 10 s apart, a warm-up
// of 120 s, resolutions at 100/s of 1 ms with a baseline of 0.5 ms.
type synth struct {
	p   params
	ss  []sample
	rec []record
	ws  []window
	fd  feedFigures
}

func newSynth() *synth {
	s := &synth{p: params{Duration: 10 * time.Minute, Speed: 1, Warmup: 2 * time.Minute, Every: 10 * time.Second, LatWindow: 10 * time.Second, Grace: 2 * time.Second, CCPConnCap: 32},
		fd: feedFigures{PollS: 12, Published: 9, PickedUp: 9, Faults: 13, FaultsRefused: 13}}
	for i := 1; i <= 60; i++ {
		s.ss = append(s.ss, sample{T: float64(i * 10), RSSMB: 20, HeapLiveMB: 3, HeapInuseMB: 6, HeapHeldMB: 8, Goroutines: 40, FDs: 30, CCPConns: 16, StateBytes: 5000, StateBound: 10000})
	}
	for ms := int64(0); ms < 600_000; ms += 10 {
		s.rec = append(s.rec, record{start: ms * 1000, dur: 1000, kind: kindResolve})
		if ms%20 == 0 {
			s.rec = append(s.rec, record{start: ms * 1000, dur: 500, kind: kindDirect})
		}
	}
	return s
}

// at is the index of the first resolve record at or after t s.
func (s *synth) at(t float64) int {
	for i, r := range s.rec {
		if r.kind == kindResolve && float64(r.start)/1e6 >= t {
			return i
		}
	}
	panic("no record")
}

// fillPools has the agent hold 14 more CCP connections (30, under the
// pools' cap of 32) in the last ten samples, with a descriptor and two
// goroutines each.
func (s *synth) fillPools() {
	for i := 50; i < len(s.ss); i++ {
		s.ss[i].CCPConns += 14
		s.ss[i].FDs += 14
		s.ss[i].Goroutines += 28
	}
}

// slowAfter multiplies the latency of the records (of kind) after t s.
func (s *synth) slowAfter(t float64, kind byte, factor float64) {
	for i := range s.rec {
		if s.rec[i].kind == kind && float64(s.rec[i].start)/1e6 >= t {
			s.rec[i].dur = int32(float64(s.rec[i].dur) * factor)
		}
	}
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name     string
		change   func(s *synth)
		wantFail string // the failing checks' names start so, joined by ", "; "" for a pass
	}{
		{"steady", func(*synth) {}, ""},
		{"heap leak", func(s *synth) {
			for i := range s.ss {
				s.ss[i].HeapLiveMB += float64(i) * 0.1 // 6 MB per 10 min
			}
		}, "live heap slope"},
		{"rss leak outside the heap", func(s *synth) {
			for i := range s.ss {
				s.ss[i].RSSMB += float64(i) * 0.05 // 3 MB per 10 min
			}
		}, "RSS slope, RSS outside the Go heap"},
		{"rss leak outside the heap, short warm-up", func(s *synth) {
			s.p.Warmup = 12 * time.Second
			for i := range s.ss {
				s.ss[i].RSSMB += float64(i) * 0.05
			}
		}, "RSS outside the Go heap"},
		{"heap high-water mark rising", func(s *synth) {
			for i := range s.ss {
				s.ss[i].RSSMB += float64(i) * 0.05
				s.ss[i].HeapHeldMB += float64(i) * 0.05
			}
		}, "RSS slope"},
		// A compressed run is too short for the heap's high-water mark
		// to settle: the heap's part of the RSS is judged by the live heap.
		{"heap high-water mark rising, short warm-up", func(s *synth) {
			s.p.Warmup = 12 * time.Second
			for i := range s.ss {
				s.ss[i].RSSMB += float64(i) * 0.05
				s.ss[i].HeapHeldMB += float64(i) * 0.05
			}
		}, ""},
		{"heap leak, short warm-up", func(s *synth) {
			s.p.Warmup = 12 * time.Second
			for i := range s.ss {
				s.ss[i].RSSMB += float64(i) * 0.1
				s.ss[i].HeapHeldMB += float64(i) * 0.1
				s.ss[i].HeapLiveMB += float64(i) * 0.1
			}
		}, "live heap slope"},
		// The live heap follows the CCP connections held, which swing
		// with the load and with replicas stopped and started: not a
		// leak, and the connections have their own check.
		{"heap follows the CCP connections held", func(s *synth) {
			for i := range s.ss {
				s.ss[i].CCPConns = 16 + 48*(i%2) + i/2
				s.ss[i].HeapLiveMB += 0.1 * float64(s.ss[i].CCPConns)
			}
		}, ""},
		{"heap leak while the CCP connections swing", func(s *synth) {
			for i := range s.ss {
				s.ss[i].CCPConns = 16 + 48*(i%2) + i/2
				s.ss[i].HeapLiveMB += 0.1*float64(s.ss[i].CCPConns) + float64(i)*0.1
			}
		}, "live heap slope"},
		// Connections that rise in step with time cannot be told apart
		// from it: the slope over time alone is judged.
		{"heap and CCP connections rising together", func(s *synth) {
			for i := range s.ss {
				s.ss[i].CCPConns = 16 + i
				s.ss[i].HeapLiveMB += 0.1 * float64(s.ss[i].CCPConns)
			}
		}, "live heap slope, connections to CCP"},
		{"rss noise", func(s *synth) {
			for i := range s.ss {
				s.ss[i].RSSMB += float64(i%3) * 1.5
			}
		}, ""},
		{"goroutine leak", func(s *synth) {
			for i := range s.ss {
				s.ss[i].Goroutines += i / 5
			}
		}, "goroutines"},
		{"one busy sample at the end", func(s *synth) { s.ss[59].Goroutines = 200; s.ss[59].FDs = 90 }, ""},
		{"descriptor leak", func(s *synth) {
			for i := range s.ss {
				s.ss[i].FDs += i / 4
			}
		}, "open descriptors"},
		{"connection leak", func(s *synth) {
			for i := range s.ss {
				s.ss[i].CCPConns += i
				s.ss[i].FDs += i
				s.ss[i].Goroutines += 2 * i
			}
		}, "connections to CCP"},
		// The pools may fill up to their cap at the end (a burst, a
		// failover), with a descriptor and two goroutines each.
		{"connections up to the pools' cap at the end", (*synth).fillPools, ""},
		{"goroutine leak while the connections fill the pools", func(s *synth) {
			for i := range s.ss {
				s.ss[i].Goroutines += i / 5
			}
			s.fillPools()
		}, "goroutines"},
		{"descriptor leak while the connections fill the pools", func(s *synth) {
			for i := range s.ss {
				s.ss[i].FDs += i / 4
			}
			s.fillPools()
		}, "open descriptors"},
		{"failure outside the windows", func(s *synth) { s.rec[s.at(300)].class = "ccp_unavailable" }, "allowed requests failed"},
		{"failure in a window", func(s *synth) {
			s.ws = []window{{From: 299, To: 305, What: "ccp-a stopped"}}
			s.rec[s.at(300)].class = "ccp_unavailable"
		}, ""},
		{"refused caller served", func(s *synth) {
			s.rec = append(s.rec, record{start: 400e6, dur: 10, kind: kindRefused, class: "served"})
		}, "allowed requests failed"},
		{"stale password", func(s *synth) {
			s.rec = append(s.rec, record{start: 400e6, dur: 10, kind: 'p', class: "stale_password"})
		}, "allowed requests failed"},
		{"baseline failure is not the agent's", func(s *synth) { s.rec[1].class = "ccp_error" }, ""},
		{"state directory grows", func(s *synth) { s.ss[40].StateBytes = 20000 }, "state directory"},
		{"agent slower at the end", func(s *synth) { s.slowAfter(590, kindResolve, 3) }, "p99"},
		{"machine slower at the end", func(s *synth) { s.slowAfter(590, kindResolve, 3); s.slowAfter(590, kindDirect, 3) }, ""},
		{"feed change not picked up", func(s *synth) { s.fd.PickedUp-- }, "feed"},
		{"feed fault not refused with its reason", func(s *synth) { s.fd.FaultsRefused-- }, "feed"},
		{"feed did not recover after a fault", func(s *synth) { s.fd.Failures = []string{"t=300s did not recover"} }, "feed"},
		{"no feed change in the run", func(s *synth) { s.fd.Published, s.fd.PickedUp = 0, 0 }, "feed"},
		{"no feed fault in the run", func(s *synth) { s.fd.Faults, s.fd.FaultsRefused = 0, 0 }, "feed"},
		{"slow period excluded", func(s *synth) {
			s.ws = []window{{From: 588, To: 600, What: "CCP slow"}}
			s.slowAfter(588, kindResolve, 10)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSynth()
			tt.change(s)
			r := analyze(s.p, s.ss, s.rec, s.ws, s.fd)
			var failed []string
			for _, c := range r.Verdicts {
				if !c.Pass {
					failed = append(failed, c.Name+": "+c.Detail)
				}
			}
			var want []string
			if tt.wantFail != "" {
				want = strings.Split(tt.wantFail, ", ")
			}
			ok := len(failed) == len(want)
			for i := 0; ok && i < len(want); i++ {
				ok = strings.HasPrefix(failed[i], want[i])
			}
			if !ok {
				t.Errorf("failed %q, want only %q", failed, want)
			}
			if r.Passed != (len(failed) == 0) {
				t.Errorf("Passed %v with %d failed checks", r.Passed, len(failed))
			}
		})
	}
}

func TestAnalyzeFigures(t *testing.T) {
	s := newSynth()
	for i := range s.ss {
		s.ss[i].HeapLiveMB += float64(i) * 0.01 // 0.6 MB per 10 min
	}
	r := analyze(s.p, s.ss, s.rec, s.ws, s.fd)
	if r.Resolutions != 60000 || r.ResolutionsPerS != 100 {
		t.Errorf("resolutions %d (%v/s)", r.Resolutions, r.ResolutionsPerS)
	}
	if math.Abs(r.HeapSlope-0.6) > 1e-6 || r.HeapSlopeAtConns != r.HeapSlope || r.HeapConnsFitted || r.RSSSlope != 0 {
		t.Errorf("slopes heap %v (at constant connections %v, fitted %v) rss %v", r.HeapSlope, r.HeapSlopeAtConns, r.HeapConnsFitted, r.RSSSlope)
	}
	// The same growth plus 20 KB per CCP connection held, with a count
	// of connections that swings: the fit gives both back.
	s = newSynth()
	for i := range s.ss {
		s.ss[i].CCPConns = 16 + 48*(i%2) + i/2
		s.ss[i].HeapLiveMB += float64(i)*0.01 + 0.02*float64(s.ss[i].CCPConns)
	}
	r = analyze(s.p, s.ss, s.rec, s.ws, s.fd)
	if !r.HeapConnsFitted || math.Abs(r.HeapSlopeAtConns-0.6) > 1e-3 || math.Abs(r.HeapKBPerCCPConn-20) > 1e-3 || r.HeapSlope <= 0.6 {
		t.Errorf("heap fitted %v: %v MB per 10 min at constant connections, %v KB per connection, %v without", r.HeapConnsFitted, r.HeapSlopeAtConns, r.HeapKBPerCCPConn, r.HeapSlope)
	}
	if r.P99FirstUS != 1000 || r.P99LastUS != 1000 || r.P99FirstWindowS != 120 || r.P99LastWindowS != 590 || r.DirectP99FirstUS != 500 {
		t.Errorf("p99 %v (at %v) -> %v (at %v), direct %v", r.P99FirstUS, r.P99FirstWindowS, r.P99LastUS, r.P99LastWindowS, r.DirectP99FirstUS)
	}
	if got := r.Series[5]; got.Resolutions != 1000 || got.P99us != 1000 || got.P50us != 1000 {
		t.Errorf("sample 5: %+v", got)
	}
	// At speed 10, the same growth per real second is ten times less per
	// simulated time.
	s = newSynth()
	s.p.Speed = 10
	for i := range s.ss {
		s.ss[i].HeapLiveMB += float64(i) * 0.01
	}
	if r := analyze(s.p, s.ss, s.rec, s.ws, s.fd); math.Abs(r.HeapSlope-0.06) > 1e-6 {
		t.Errorf("heap slope at speed 10: %v", r.HeapSlope)
	}
}
