// Command fakeccp runs the fake CyberArk Central Credential Provider of
// package fakeccp as a program.
//
//	fakeccp dev --dir DIR [--listen ADDR] [--admin ADDR] [--san HOST]...
//	fakeccp serve --config FILE --tls-cert FILE --tls-key FILE --client-ca FILE [--listen ADDR] [--admin ADDR]
//	fakeccp load --dir DIR [--url URL] [--concurrency N] [--duration D] [--requests N]
//
// dev creates (or reuses) a dev CA, server and DemoApp certificates and
// the dev fixture in DIR, then serves them. Both serving commands print
// "listening on https://ADDR" and "admin on http://ADDR" once listening,
// and stop cleanly on SIGINT or SIGTERM. load measures a fake's
// throughput and prints the result as JSON.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  fakeccp dev --dir DIR [--listen 127.0.0.1:8443] [--admin 127.0.0.1:8444] [--san HOST]...
  fakeccp serve --config FILE --tls-cert FILE --tls-key FILE --client-ca FILE [--listen ADDR] [--admin ADDR]
  fakeccp load --dir DIR [--url URL] [--concurrency 32] [--duration 5s] [--requests 200000]
Run "fakeccp COMMAND -h" for a command's flags.
`)
}
