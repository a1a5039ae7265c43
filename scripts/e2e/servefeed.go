package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"
)

// serveFeed is a static HTTPS file server for the feed in make e2e, where
// building the nginx image of make fleet from a debootstrap root would cost
// minutes: the same tree, a strong ETag per file and If-None-Match, and an
// access log in the fleet's format ("$msec $status $bytes_sent $uri").
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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, n := http.StatusOK, 0
		defer func() {
			mu.Lock()
			fmt.Fprintf(lf, "%.3f %d %d %s\n", float64(time.Now().UnixMilli())/1000, status, n, r.URL.Path)
			mu.Unlock()
		}()
		b, err := os.ReadFile(filepath.Join(*root, filepath.FromSlash(path.Clean("/"+r.URL.Path))))
		if err != nil {
			status = http.StatusNotFound
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			status = http.StatusNotModified
			n = len("HTTP/1.1 304 Not Modified\r\nEtag: \r\n\r\n") + len(etag)
			w.WriteHeader(status)
			return
		}
		n = len(b)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
	return http.ListenAndServeTLS(*listen, *cert, *key, h)
}
