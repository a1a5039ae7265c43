// Package procs sets the Go runtime for a small daemon (SmallDaemon: one
// P, GOGC=200) and moves GOMAXPROCS between one and the machine's cores with
// the agent's load (Govern).
//
// One P suits the agent most of the time: a resolution is a chain of
// goroutines handing work to each other, and with one P each hand-off
// stays on the running thread, where with more the runtime wakes an idle
// thread for it, which costs more than the work on a small machine
// (bench/README.md, "Where the agent's time goes"). But one P is also one
// core: under many concurrent callers, goroutines queue for it while the
// machine's other cores have room.
//
// Govern watches the runtime's own measure of that queue, the time
// goroutines wait between becoming runnable and running
// (/sched/latencies:seconds in runtime/metrics), every Interval. When in
// two intervals running a tenth or more of the scheduling waits took
// SlowWait or more, it raises GOMAXPROCS to Max; once waits have been short
// (or the agent idle) for Calm, it lowers it back to one. Changing GOMAXPROCS stops the world
// for a few microseconds; the hysteresis keeps that rare.
package procs

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/rs/zerolog"
)

// SmallDaemon sets the Go scheduler for what the agent is: a small
// daemon whose resolutions are mostly waiting on sockets, each one a chain
// of goroutines handing work to each other (the local API's connection,
// the CCP call, net/http's read and write loops).
//
// With one P (GOMAXPROCS=1) such a hand-off puts the next goroutine on the
// same thread. With more, the runtime wakes another thread for it, which
// finds nothing to do and sleeps again: make bench measured about 15
// context switches and 530 µs of CPU per sequential resolution with two
// Ps on a 2-core machine, against about 7 and 350 µs with one, and a lower
// latency (bench/README.md, "Where the agent's time goes"). So the agent
// starts on one P, and Govern gives it the machine's cores only while
// goroutines queue for that one (many callers at once), then takes them
// back. govern says whether to run Govern.
//
// The garbage collector runs at GOGC=200: the agent's live heap is a few MB,
// so at the default (100) it collected every 4 MB allocated, which under
// many callers cost about a tenth of its CPU. make bench, three runs of
// old and new back to back: throughput 0.50-0.61 of the direct client's
// before, 0.65-0.71 after, for 3.6 MB more resident memory (24 MB).
//
// GOMAXPROCS or GOGC in the environment still wins, for an operator who
// wants a fixed setting: then that one is not changed.
func SmallDaemon() (govern bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return false
	}
	runtime.GOMAXPROCS(1)
	return true
}

// Options tune Govern. Zero fields take the defaults.
type Options struct {
	// Max is the most Ps under load: runtime.NumCPU() by default.
	Max int
	// Interval is how often the scheduler's waits are read (100 ms).
	Interval time.Duration
	// SlowWait is a wait that counts as queueing (100 µs).
	SlowWait time.Duration
	// Calm is how long waits must stay short before GOMAXPROCS goes back
	// to one (3 s).
	Calm time.Duration
	Log  zerolog.Logger
}

const schedLatencies = "/sched/latencies:seconds"

// minEvents is the fewest scheduling events in an interval that can make
// it busy: fewer is an agent at rest, whatever their waits.
const minEvents = 100

// Govern sets GOMAXPROCS to one, then adjusts it until ctx is done, when it
// leaves it at one.
func Govern(ctx context.Context, o Options) {
	if o.Max <= 0 {
		o.Max = runtime.NumCPU()
	}
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.SlowWait <= 0 {
		o.SlowWait = 100 * time.Microsecond
	}
	if o.Calm <= 0 {
		o.Calm = 3 * time.Second
	}
	runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(1)
	if o.Max <= 1 {
		<-ctx.Done()
		return
	}
	g := &governor{cur: 1, max: o.Max, calmWindows: max(int(o.Calm/o.Interval), 1)}
	sample := []metrics.Sample{{Name: schedLatencies}}
	var prev []uint64
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
			return // a runtime without the metric: stay at one P
		}
		h := sample[0].Value.Float64Histogram()
		w := waitsSince(prev, h, o.SlowWait.Seconds())
		prev = append(prev[:0], h.Counts...)
		if next := g.step(w); next != g.cur {
			o.Log.Debug().Int("from", g.cur).Int("to", next).Uint64("waits", w.events).Uint64("slow_waits", w.slow).
				Msg("GOMAXPROCS changed with the load")
			runtime.GOMAXPROCS(next)
			g.cur = next
		}
	}
}

// window is one interval's scheduling waits: how many, and how many took
// SlowWait or more.
type window struct{ events, slow uint64 }

// waitsSince counts the waits recorded in h since the counts prev (nil:
// none yet, and the window is empty). A bucket counts as slow when its
// lower bound is slow or more.
func waitsSince(prev []uint64, h *metrics.Float64Histogram, slow float64) window {
	var w window
	if len(prev) != len(h.Counts) {
		return w
	}
	for i, c := range h.Counts {
		d := c - prev[i]
		w.events += d
		if h.Buckets[i] >= slow {
			w.slow += d
		}
	}
	return w
}

// governor decides GOMAXPROCS from one window after another.
type governor struct {
	cur, max    int
	calmWindows int // calm windows in a row needed to go back to one
	busy, calm  int // busy and calm windows in a row
}

// step takes the next window and returns the GOMAXPROCS it calls for.
// Busy: enough waits, a tenth of them or more slow. Calm: few waits, or
// under one in fifty slow. make bench measured, on one P, under 1% slow
// with one caller resolving as fast as it can, and about 23% with 64.
func (g *governor) step(w window) int {
	busy := w.events >= minEvents && 10*w.slow >= w.events
	calm := w.events < minEvents || 50*w.slow < w.events
	if busy {
		g.busy++
	} else {
		g.busy = 0
	}
	if calm {
		g.calm++
	} else {
		g.calm = 0
	}
	switch {
	case g.cur == 1 && g.busy >= 2:
		g.busy, g.calm = 0, 0
		return g.max
	case g.cur > 1 && g.calm >= g.calmWindows:
		g.busy, g.calm = 0, 0
		return 1
	}
	return g.cur
}
