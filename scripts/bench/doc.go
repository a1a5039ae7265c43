// Command bench is the benchmark harness behind `make bench`.
//
// It starts everything it measures on loopback (the fake CCP and a bare mTLS
// server as child processes of itself, the agent as bin/credagent run --dev,
// a swtpm when installed), measures each figure next to a baseline taken in
// the same run, interleaving the two in short rounds (A/B/A/B) so that a noisy
// neighbour moves both, and reports the median of the rounds. It prints a
// table and writes bench/results.json, bench/README.md and bench/latency.png.
//
// Everything it starts is stopped when it ends; every phase is bounded in
// requests and time, and the whole run in time (-budget).
//
// Usage:
//
//	go build -o bin/bench ./scripts/bench && bin/bench [-out bench] [-bin bin]
//
// The figures and how each is measured are described in bench/README.md,
// which the harness writes.
//
// For work by hand (perf, strace, go tool trace, /proc), -hold D sets
// everything up and then only drives one path for D, printing each second's
// figures and the pids: -hold-path agent (the default), direct or localapi;
// -hold-callers N for N concurrent callers; -hold-profile FILE for a CPU
// profile of the harness's own process (the callers' side). -only runs some
// phases; -profile always -keep keeps the agent's CPU profiles.
//
// The harness is Linux-only (it reads /proc and runs swtpm); on other systems
// it builds to a stub that says so.
package main
