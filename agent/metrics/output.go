package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// WriteFile writes the metrics to path atomically: into a temporary file
// in the same directory (a name the textfile collectors skip: a leading
// dot, no .prom suffix), synced, then renamed over path. The file is
// readable by everyone (0644 on Unix), because node_exporter runs as a user
// of its own; it holds no secret. On Windows it takes the directory's ACL.
func (r *Registry) WriteFile(path string) error {
	var b bytes.Buffer
	r.render(&b)
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", tmp, err)
	}
	if err := f.Chmod(0o644); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	ok = true
	return nil
}

// Options configure Run.
type Options struct {
	// Textfile, if set, is rewritten every Interval and once more at stop.
	Textfile string
	Interval time.Duration
	// Listen, if set, serves GET /metrics there. It must be a loopback
	// address (config validation checks it; Run checks the bound address
	// again).
	Listen string
	Log    zerolog.Logger
}

// Run writes the textfile and serves the page until ctx ends. A write that
// fails is logged and tried again at the next interval; a listener that
// cannot be opened is an error.
func (r *Registry) Run(ctx context.Context, o Options) error {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	errc := make(chan error, 1)
	if o.Listen != "" {
		ln, err := listenLoopback(o.Listen)
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           r.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       time.Minute,
		}
		go func() { errc <- srv.Serve(ln) }()
		defer srv.Close()
		o.Log.Info().Str("address", ln.Addr().String()).Msg("metrics: serving /metrics")
	}
	if o.Textfile == "" {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("metrics: %w", err)
		}
	}
	failing := false
	write := func() {
		if err := r.WriteFile(o.Textfile); err != nil {
			if !failing {
				o.Log.Error().Err(err).Str("file", o.Textfile).Msg("metrics: cannot write the textfile; will retry")
			}
			failing = true
			return
		}
		if failing {
			o.Log.Info().Str("file", o.Textfile).Msg("metrics: the textfile is written again")
		}
		failing = false
	}
	write()
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			write()
			return nil
		case err := <-errc:
			return fmt.Errorf("metrics: %w", err)
		case <-t.C:
			write()
		}
	}
}

// listenLoopback listens on addr and refuses anything but a loopback
// address, after resolution ("localhost" may resolve to anything).
func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listening on %s: %w", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("metrics: %s is not a loopback address; the metrics page is served only to this machine", addr)
	}
	return ln, nil
}

// Handler serves the metrics at GET /metrics.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.WriteText(w)
	})
	return mux
}
