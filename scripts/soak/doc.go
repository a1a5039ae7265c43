// Command soak is the soak test behind `make soak`: a month of a fleet
// machine's life in ten minutes, with nothing growing.
//
// It runs one agent (bin/credagent run --config, as root, the way the
// service runs) against two fake CCP replicas (bin/fakeccp serve), and
// while callers resolve about 1,000 credentials a second from several OS
// users (mixed with check and status, and with callers that hang up in the
// middle of a request), it keeps changing the agent's world: the
// application certificate is rotated by delivery, the password in the fake
// is rotated, the store is re-delivered with another server list, a replica
// is stopped and started, the CCP has slow periods, the config is reloaded
// (and now and then a bad one is refused), and junk and replayed deliveries
// are dropped into the inbox. The agent also follows a feed that the
// harness serves over HTTPS and publishes to (a rotated certificate, new
// credentials, revocations) and makes misbehave in each way a feed can
// (outages, resets, bad, rolled-back, expired, oversized, truncated or
// dripped manifests, HTML pages, redirects to http, deliveries that do not
// match): each change must reach the agent, each fault be refused with its
// reason while the last good state serves (feed_linux.go). Every sample interval (10 s) it reads the
// agent's RSS, Go heap, goroutines, open descriptors, connections to CCP,
// the state directory's size and the latency percentiles of the interval.
//
// It writes bench/soak.json, bench/soak.png and the soak section of
// bench/README.md, and fails (exit 1) when, after the warm-up, something
// grows: see the checks in analysis.go and bench/README.md.
//
// Usage:
//
//	go build -o bin/soak ./scripts/soak && bin/soak [-duration 10m] [-speed 1]
//
// -speed N divides every period (events, warm-up, sampling) by N and states
// the growth limits per ten simulated minutes: the CI runs -duration 60s
// -speed 10, the same month in a minute.
//
// Callers of other OS users need root (the soak creates the users and the
// socket group it needs, and removes what it created); without root the
// soak runs every caller as the current user and says so.
//
// The harness is Linux-only (it reads /proc); on other systems it builds to
// a stub that says so. Its child processes and the statistics and chart
// helpers are shared with scripts/bench through scripts/internal/rig.
package main
