package localapi

import (
	"runtime/metrics"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// The runtime/metrics samples behind apitype.RuntimeStatus. Reading them
// does not stop the world (runtime.ReadMemStats would).
var runtimeSamples = []string{
	"/sched/goroutines:goroutines",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/gc/heap/live:bytes",
	"/gc/heap/objects:objects",
	"/gc/cycles/total:gc-cycles",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/stacks:bytes",
}

// readRuntime reads the agent's goroutines and heap for a privileged
// status. HeapInuseBytes is objects plus unused heap bytes, which is
// MemStats.HeapInuse; HeapFreeBytes is free heap still backed by memory
// (MemStats.HeapIdle less HeapReleased); StackBytes is the heap reserved
// for goroutine stacks (MemStats.StackInuse).
func readRuntime() *apitype.RuntimeStatus {
	s := make([]metrics.Sample, len(runtimeSamples))
	for i, n := range runtimeSamples {
		s[i].Name = n
	}
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return &apitype.RuntimeStatus{
		Goroutines:     int(u(0)),
		HeapInuseBytes: u(1) + u(2),
		HeapLiveBytes:  u(3),
		HeapObjects:    u(4),
		GCCycles:       u(5),
		HeapFreeBytes:  u(6),
		StackBytes:     u(7),
	}
}
