package procs

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestSmallDaemon(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	tests := []struct {
		env    string // GOMAXPROCS in the environment
		start  int    // GOMAXPROCS before
		want   int
		govern bool
	}{
		{"", 2, 1, true},
		{"", 1, 1, true},
		{"2", 2, 2, false}, // the operator's setting wins
		{"4", 3, 3, false}, // and is left to the runtime, which read it at start
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range tests {
		t.Setenv("GOMAXPROCS", tt.env)
		runtime.GOMAXPROCS(tt.start)
		govern := SmallDaemon()
		if got := runtime.GOMAXPROCS(0); got != tt.want || govern != tt.govern {
			t.Errorf("GOMAXPROCS=%q, %d before: %d after, governed %v; want %d, %v", tt.env, tt.start, got, govern, tt.want, tt.govern)
		}
	}
}

func TestSmallDaemonGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct {
		env  string
		want int
	}{{"", 200}, {"50", 100}} { // with GOGC set, what the runtime read is left
		t.Setenv("GOGC", tt.env)
		debug.SetGCPercent(100)
		SmallDaemon()
		if got := debug.SetGCPercent(100); got != tt.want {
			t.Errorf("GOGC=%q: GC percent %d, want %d", tt.env, got, tt.want)
		}
	}
}
