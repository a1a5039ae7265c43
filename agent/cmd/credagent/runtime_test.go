package main

import (
	"runtime"
	"testing"
)

func TestSmallDaemonRuntime(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	tests := []struct {
		env   string // GOMAXPROCS in the environment
		start int    // GOMAXPROCS before
		want  int
	}{
		{"", 2, 1},
		{"", 1, 1},
		{"2", 2, 2}, // the operator's setting wins
		{"4", 3, 3}, // and is left to the runtime, which read it at start
	}
	for _, tt := range tests {
		t.Setenv("GOMAXPROCS", tt.env)
		runtime.GOMAXPROCS(tt.start)
		smallDaemonRuntime()
		if got := runtime.GOMAXPROCS(0); got != tt.want {
			t.Errorf("GOMAXPROCS=%q, %d before: %d after, want %d", tt.env, tt.start, got, tt.want)
		}
	}
}
