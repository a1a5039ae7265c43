package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/service/statusview"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/paths"
)

func init() {
	var cfgPath, devDir, socket string
	var timeout time.Duration
	register(&command{
		name:    "sync",
		summary: "make the running agent poll its feed now",
		usage: `credagent sync [--config FILE | --dev DIR | --socket PATH] [--timeout D]

Asks the agent to poll its feed (feed.urls) now instead of at the next
interval, waits until the poll is done, and prints the feed's state: each
manifest's sequence, age and expiry, and the last error. A reload (SIGHUP,
credagent reload) also polls the feed. Exits 1 if a manifest could not be
fetched or is expired.

Example:
  credagent sync`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfgPath, "config", paths.Default().ConfigFile, "the agent's config `FILE` (for its socket)")
			fs.StringVar(&devDir, "dev", "", "the dev-mode agent of `DIR`")
			fs.StringVar(&socket, "socket", "", "ask the agent on this socket or pipe")
			fs.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
		},
		run: func(args []string, stdout, stderr io.Writer) error {
			var err error
			switch {
			case socket != "":
			case devDir != "":
				if socket, err = devSocket(devDir); err != nil {
					return err
				}
			default:
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return err
				}
				socket = cfg.Paths.Socket
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c := client.New(socket)
			defer c.Close()
			st, err := c.Sync(ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			statusview.Feed(stdout, st.Feed, now)
			for _, f := range st.Feed {
				if f.Expired || f.LastError != "" {
					return &exitError{code: 1, err: errors.New("the feed is not healthy (see above)")}
				}
			}
			fmt.Fprintln(stdout, "feed polled")
			return nil
		},
	})
}
