package main

import (
	"os"
	"runtime"
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
// GOMAXPROCS in the environment still wins, for an operator who wants a
// fixed number: then nothing is changed.
func smallDaemonRuntime() (govern bool) {
	if os.Getenv("GOMAXPROCS") != "" {
		return false
	}
	runtime.GOMAXPROCS(1)
	return true
}
