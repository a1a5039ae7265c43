package localapi_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/client"
)

// BenchmarkResolve measures /v1/resolve through the Unix socket with 64
// concurrent callers against an in-memory Fetcher: this is the agent's own
// overhead (HTTP, identity, policy, rate limit, audit off, encoding). It
// reports resolutions/s and the p50 and p99 latency of one call.
func BenchmarkResolve(b *testing.B) {
	const callers = 64
	h := start(b, setup{cfg: localapi.Config{Limits: localapi.Limits{MaxConcurrent: 1024}}, quiet: true})
	clients := make([]*client.Client, callers)
	for i := range clients {
		clients[i] = client.New(h.path)
		defer clients[i].Close()
	}
	var (
		next  atomic.Int64
		mu    sync.Mutex
		lats  = make([]time.Duration, 0, b.N)
		wg    sync.WaitGroup
		ctx   = context.Background()
		fails atomic.Int64
	)
	b.ReportAllocs()
	b.ResetTimer()
	begin := time.Now()
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, b.N/callers+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				res, err := clients[i].Resolve(ctx, "bench-run", "bench-flow", "sap")
				local = append(local, time.Since(t0))
				if err != nil || res.Get("sap").Err != nil {
					fails.Add(1)
					continue
				}
				res.Wipe()
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	b.StopTimer()
	if n := fails.Load(); n > 0 {
		b.Fatalf("%d failed resolutions", n)
	}
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(float64(len(lats))*p))] }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "resolutions/s")
	b.ReportMetric(float64(pct(0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(0.99).Microseconds()), "p99-µs")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Sys)/(1<<20), "go-sys-MB")
}

// BenchmarkResolveSerial is one caller at a time: the latency floor.
func BenchmarkResolveSerial(b *testing.B) {
	h := start(b, setup{quiet: true})
	ctx := context.Background()
	for b.Loop() {
		res, err := h.client.Resolve(ctx, "bench-run", "bench-flow", "sap")
		if err != nil {
			b.Fatal(err)
		}
		res.Wipe()
	}
}
