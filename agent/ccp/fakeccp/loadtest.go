package fakeccp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LoadOptions bound a LoadTest.
type LoadOptions struct {
	// URL is the full request URL, query included. Its host must be a
	// loopback address or "localhost": LoadTest is for measuring the fake,
	// not for loading anything else.
	URL string
	// TLSConfig is the client's TLS configuration (certificate, roots).
	// The load client speaks HTTP/1.1 whatever NextProtos says.
	TLSConfig *tls.Config
	// Concurrency is the number of keep-alive clients; default 32, at
	// most 1024.
	Concurrency int
	// Requests stops the test after this many; default 200000, at most
	// 10,000,000.
	Requests int
	// Duration stops the test after this long; default 5s, at most 60s.
	Duration time.Duration
}

// LoadResult is what a LoadTest measured.
type LoadResult struct {
	Requests  uint64         `json:"requests"` // answered, whatever the status
	Errors    uint64         `json:"errors"`   // transport errors
	ByStatus  map[int]uint64 `json:"byStatus"`
	Duration  time.Duration  `json:"duration"`
	PerSecond float64        `json:"perSecond"` // Requests / Duration
	P50       time.Duration  `json:"p50"`
	P99       time.Duration  `json:"p99"`
}

// samplesPerWorker bounds the latency samples each client keeps.
const samplesPerWorker = 8192

// LoadTest sends GET requests to URL from Concurrency keep-alive
// connections, one request in flight on each (no pipelining), until
// Requests are done, Duration passes or ctx ends, and reports the
// throughput. Its HTTP/1.1 client is minimal (no net/http Transport) so
// that on a small machine the fake, not the load generator, is measured.
// It fails only on bad options or when nothing was answered.
func LoadTest(ctx context.Context, o LoadOptions) (LoadResult, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return LoadResult{}, fmt.Errorf("fakeccp: LoadTest: %w", err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		return LoadResult{}, fmt.Errorf("fakeccp: LoadTest: host %q is not loopback", host)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	o.Concurrency = min(o.Concurrency, 1024)
	if o.Requests <= 0 {
		o.Requests = 200000
	}
	o.Requests = min(o.Requests, 10_000_000)
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	o.Duration = min(o.Duration, time.Minute)

	cfg := &tls.Config{}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	cfg.NextProtos = []string{"http/1.1"}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(host, "443")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	reqBytes := []byte("GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: fakeccp-loadtest\r\nAccept: application/json\r\n\r\n")

	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var issued, errs atomic.Int64
	var mu sync.Mutex
	statuses := map[int]uint64{}
	var samples []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[int]uint64{}
			lat := make([]time.Duration, 0, samplesPerWorker)
			n := 0
			var c *loadConn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for ctx.Err() == nil && issued.Add(1) <= int64(o.Requests) {
				t0 := time.Now()
				if c == nil {
					var err error
					if c, err = dialLoad(ctx, addr, cfg); err != nil {
						if ctx.Err() == nil {
							errs.Add(1)
						}
						continue
					}
				}
				status, keep, err := c.roundTrip(ctx, reqBytes)
				if err != nil {
					c.Close()
					c = nil
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				if !keep {
					c.Close()
					c = nil
				}
				d := time.Since(t0)
				local[status]++
				if len(lat) < samplesPerWorker {
					lat = append(lat, d)
				} else {
					lat[n%samplesPerWorker] = d
				}
				n++
			}
			mu.Lock()
			for k, v := range local {
				statuses[k] += v
			}
			samples = append(samples, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res := LoadResult{ByStatus: statuses, Duration: time.Since(start), Errors: uint64(errs.Load())}
	for _, v := range statuses {
		res.Requests += v
	}
	if res.Duration > 0 {
		res.PerSecond = float64(res.Requests) / res.Duration.Seconds()
	}
	if len(samples) > 0 {
		slices.Sort(samples)
		res.P50 = samples[len(samples)/2]
		res.P99 = samples[len(samples)*99/100]
	}
	if res.Requests == 0 {
		return res, errors.New("fakeccp: LoadTest: no request was answered")
	}
	return res, nil
}

// loadConn is a minimal HTTP/1.1 client connection: one request in flight
// (keep-alive, no pipelining), responses with Content-Length only. It
// keeps the load generator cheap so that the fake's own cost dominates.
type loadConn struct {
	*tls.Conn
	r *bufio.Reader
}

func dialLoad(ctx context.Context, addr string, cfg *tls.Config) (*loadConn, error) {
	d := tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	return &loadConn{tc, bufio.NewReaderSize(tc, 16<<10)}, nil
}

// roundTrip sends req and reads one response, discarding its body.
func (c *loadConn) roundTrip(ctx context.Context, req []byte) (status int, keepAlive bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl.Add(10 * time.Second))
	}
	if _, err := c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	keepAlive = true
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
			keepAlive = false
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return 0, false, errors.New("chunked responses are not supported by the load client")
		}
	}
	if length < 0 {
		return 0, false, errors.New("response without Content-Length")
	}
	if _, err := c.r.Discard(length); err != nil {
		return 0, false, err
	}
	return status, keepAlive, nil
}
