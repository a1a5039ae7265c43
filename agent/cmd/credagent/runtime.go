package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// smallDaemonRuntime sets the Go scheduler for what the agent is: a small
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
// starts on one P, and agent/procs gives it the machine's cores only while
// goroutines queue for that one (many callers at once), then takes them
// back. govern says whether to run agent/procs.
//
// The garbage collector runs at GOGC=200: the agent's live heap is a few MB,
// so at the default (100) it collected every 4 MB allocated, which under
// many callers cost about a tenth of its CPU. make bench, three runs of
// old and new back to back: throughput 0.50-0.61 of the direct client's
// before, 0.65-0.71 after, for 3.6 MB more resident memory (24 MB).
//
// GOMAXPROCS or GOGC in the environment still wins, for an operator who
// wants a fixed setting: then that one is not changed.
func smallDaemonRuntime() (govern bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return false
	}
	runtime.GOMAXPROCS(1)
	return true
}
