package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/credagent/credagent/agent/version"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the agent's version",
		usage:   "credagent version\n\nExample:\n  credagent version",
		run: func(args []string, stdout, stderr io.Writer) error {
			fmt.Fprintf(stdout, "credagent %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	})
}
