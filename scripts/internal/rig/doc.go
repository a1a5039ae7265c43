// Package rig holds what the load harnesses under scripts/ share: child
// processes with their output and logs (Proc), the portal's side of
// deliveries (Portal), latency statistics, and the PNG charts drawn with
// the standard library only (a latency histogram and time series).
//
// It is used by the benchmark (scripts/bench) and the soak (scripts/soak).
package rig
