package fakeccp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
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
	// HTTP/1.1 is used unless its NextProtos offers only "h2".
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

// LoadTest sends GET requests to URL from Concurrency keep-alive clients
// until Requests are done, Duration passes or ctx ends, and reports the
// throughput. It fails only on bad options or when nothing was answered.
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

	cfg := o.TLSConfig
	if cfg != nil {
		cfg = cfg.Clone()
	}
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConns:        o.Concurrency,
		MaxIdleConnsPerHost: o.Concurrency,
		MaxConnsPerHost:     o.Concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   cfg != nil && slices.Equal(cfg.NextProtos, []string{"h2"}),
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

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
			for ctx.Err() == nil && issued.Add(1) <= int64(o.Requests) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				local[resp.StatusCode]++
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
