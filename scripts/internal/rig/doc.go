// Package rig holds what the load harnesses under scripts/ share: child
// processes with their output and logs (Proc), latency statistics, and the
// PNG charts drawn with the standard library only (a latency histogram and
// time series). The portal's side of deliveries is agent/agenttest's Portal.
//
// It is used by the benchmark (scripts/bench) and the soak (scripts/soak).
package rig
