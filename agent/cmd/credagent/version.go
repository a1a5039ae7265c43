package main

import (
	"fmt"
	"runtime"

	"github.com/credagent/credagent/agent/version"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the agent's version",
		usage:   "credagent version\n\nExample:\n  credagent version",
		run: func(args []string) error {
			fmt.Printf("credagent %s (%s, %s/%s)\n", version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	})
}
