// Command e2e is the end-to-end suite in containers (`make e2e`) and its
// test runner client.
//
//	e2e drive --bin DIR [--keep]     on the host: build the topology, run the scenarios, clean up
//	e2e runner SUBCOMMAND ...        inside an agent container: resolve, load, wait-serve, status, serve-feed
//	e2e fleet --agents N ...         on the host: the feed scenario over N agents (make fleet; 10 in make e2e)
//
// drive is started by scripts/e2e.sh after the images are built. It starts
// containers with the docker CLI, so it does nothing unless asked to: plain
// `go test ./...` never runs it. The runner is copied into the agent image
// and run with `docker exec`; it talks to the agent's socket with
// agent/localapi/client and prints JSON. It never prints a password: only
// its SHA-256, so that the driver can tell old from new.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2e drive|runner ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "drive":
		err = drive(os.Args[2:])
	case "runner":
		err = runner(os.Args[2:])
	case "fleet":
		err = fleet(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}
