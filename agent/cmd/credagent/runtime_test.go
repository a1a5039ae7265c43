package main

import (
	"runtime"
	"testing"
)

func TestSmallDaemonRuntime(t *testing.T) {
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
	for _, tt := range tests {
		t.Setenv("GOMAXPROCS", tt.env)
		runtime.GOMAXPROCS(tt.start)
		govern := smallDaemonRuntime()
		if got := runtime.GOMAXPROCS(0); got != tt.want || govern != tt.govern {
			t.Errorf("GOMAXPROCS=%q, %d before: %d after, governed %v; want %d, %v", tt.env, tt.start, got, govern, tt.want, tt.govern)
		}
	}
}
