package procs

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

func TestGovernorStep(t *testing.T) {
	busy := window{events: 1000, slow: 230}
	quiet := window{events: 1000, slow: 10}
	idle := window{events: 3}
	between := window{events: 1000, slow: 50} // neither busy nor calm
	tests := []struct {
		name    string
		windows []window
		want    []int // GOMAXPROCS after each window
	}{
		{"one busy window is not enough", []window{busy, quiet, busy, idle}, []int{1, 1, 1, 1}},
		{"two busy windows raise it", []window{busy, busy}, []int{1, 4}},
		{"few waits are never busy", []window{{events: 99, slow: 99}, {events: 99, slow: 99}}, []int{1, 1}},
		{"calm for three windows lowers it", []window{busy, busy, quiet, idle, quiet}, []int{1, 4, 4, 4, 1}},
		{"a window between breaks the calm", []window{busy, busy, quiet, quiet, between, quiet, quiet, quiet}, []int{1, 4, 4, 4, 4, 4, 4, 1}},
		{"busy at four stays at four", []window{busy, busy, busy, busy, busy}, []int{1, 4, 4, 4, 4}},
		{"up again after down", []window{busy, busy, idle, idle, idle, busy, busy}, []int{1, 4, 4, 4, 1, 1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &governor{cur: 1, max: 4, calmWindows: 3}
			for i, w := range tt.windows {
				g.cur = g.step(w)
				if g.cur != tt.want[i] {
					t.Fatalf("after window %d (%+v): %d, want %d", i+1, w, g.cur, tt.want[i])
				}
			}
		})
	}
}

func TestWaitsSince(t *testing.T) {
	h := &metrics.Float64Histogram{Buckets: []float64{0, 1e-5, 1e-4, 1e-3, 1}, Counts: []uint64{10, 20, 30, 40}}
	if w := waitsSince(nil, h, 1e-4); w != (window{}) {
		t.Fatalf("first read: %+v, want empty", w)
	}
	if w := waitsSince([]uint64{5, 20, 0, 40}, h, 1e-4); w != (window{events: 35, slow: 30}) {
		t.Fatalf("%+v, want 35 waits, 30 slow", w)
	}
}

// TestGovernUnderLoad runs Govern against the real scheduler: goroutines
// queueing for one P raise GOMAXPROCS, and it comes back to one when they
// stop and when Govern ends.
func TestGovernUnderLoad(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Govern(ctx, Options{Max: 2, Interval: 20 * time.Millisecond, Calm: 100 * time.Millisecond})
	}()
	waitFor := func(want int, load bool) {
		t.Helper()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		if load {
			// Many goroutines that yield often: each waits for the others
			// to get the P back.
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						x := 0
						for i := range 20000 {
							x += i
						}
						_ = x
						runtime.Gosched()
					}
				}()
			}
		}
		defer func() { close(stop); wg.Wait() }()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if runtime.GOMAXPROCS(0) == want {
				return
			}
		}
		t.Fatalf("GOMAXPROCS stayed %d, want %d", runtime.GOMAXPROCS(0), want)
	}
	waitFor(1, false)
	waitFor(2, true)
	waitFor(1, false)
	cancel()
	<-done
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("after Govern: %d", got)
	}
}
