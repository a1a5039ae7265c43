package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/credagent/credagent/scripts/internal/rig"
)

// serveFeed is a static HTTPS file server for the feed in make e2e, where
// building the nginx image of make fleet from a debootstrap root would cost
// minutes: the same tree, a strong ETag per file and If-None-Match
// (rig.FeedFiles), and an access log in the fleet's format ("$msec $status
// $bytes_sent $uri").
func serveFeed(args []string) error {
	fs := flag.NewFlagSet("serve-feed", flag.ContinueOnError)
	root := fs.String("root", "/srv", "the feed tree")
	cert := fs.String("tls-cert", "", "server certificate (PEM)")
	key := fs.String("tls-key", "", "server key (PEM)")
	logFile := fs.String("log", "", "access log")
	listen := fs.String("listen", ":443", "address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lf, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	h := &rig.FeedFiles{Root: *root, Log: func(r *http.Request, status, n int) {
		if status == http.StatusNotModified {
			// What nginx counts as $bytes_sent of a 304: its status line
			// and headers.
			n = len("HTTP/1.1 304 Not Modified\r\nEtag: \r\n\r\n") + len(rig.ETag(nil))
		}
		mu.Lock()
		fmt.Fprintf(lf, "%.3f %d %d %s\n", float64(time.Now().UnixMilli())/1000, status, n, r.URL.Path)
		mu.Unlock()
	}}
	return http.ListenAndServeTLS(*listen, *cert, *key, h)
}
