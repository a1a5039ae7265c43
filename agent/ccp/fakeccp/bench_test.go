package fakeccp_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

// BenchmarkServeMTLS measures the fake's throughput over mTLS: 16
// keep-alive connections, one request in flight on each, driven by
// LoadTest's minimal client. It reports req/s.
func BenchmarkServeMTLS(b *testing.B) {
	srv := start(b, nil, func(o *fakeccp.Options) { o.AuditSize = -1 })
	b.ResetTimer()
	cpu0 := processCPU()
	res, err := fakeccp.LoadTest(context.Background(), fakeccp.LoadOptions{
		URL:         srv.AccountsURL() + sapQuery,
		TLSConfig:   dev(b).ClientTLSConfig(),
		Concurrency: 16,
		Requests:    b.N,
		Duration:    time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.ByStatus[200] != res.Requests || res.Errors != 0 {
		b.Fatalf("result %+v", res)
	}
	b.ReportMetric(res.PerSecond, "req/s")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
	reportCPU(b, processCPU()-cpu0, res.Requests)
}

// reportCPU reports the process's CPU time per request (server and load
// client together) and the throughput two idle cores would give at that
// cost: on a shared machine wall-clock req/s mostly measures the
// neighbours.
func reportCPU(b *testing.B, cpu time.Duration, n uint64) {
	if cpu <= 0 || n == 0 {
		return
	}
	per := float64(cpu.Microseconds()) / float64(n)
	b.ReportMetric(per, "cpu-µs/req")
	b.ReportMetric(2e6/per, "req/s@2cores")
}

// BenchmarkServeMTLSNetHTTP is the same load from net/http clients, as the
// agent would send it; the client's own cost weighs more here.
func BenchmarkServeMTLSNetHTTP(b *testing.B) {
	srv := start(b, nil, func(o *fakeccp.Options) { o.AuditSize = -1 })
	tr := &http.Transport{
		TLSClientConfig:     dev(b).ClientTLSConfig(),
		MaxIdleConnsPerHost: 256,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := srv.AccountsURL() + sapQuery
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	reportCPU(b, processCPU()-cpu0, uint64(b.N))
}

func TestLoadTest(t *testing.T) {
	srv := start(t, nil, nil)
	res, err := fakeccp.LoadTest(context.Background(), fakeccp.LoadOptions{
		URL:         srv.AccountsURL() + sapQuery,
		TLSConfig:   dev(t).ClientTLSConfig(),
		Concurrency: 4,
		Requests:    400,
		Duration:    10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 400 || res.ByStatus[200] != 400 || res.PerSecond <= 0 || res.P99 < res.P50 {
		t.Errorf("result %+v", res)
	}
	if c := srv.Counters(); c.Connections > 4 {
		t.Errorf("%d connections for 4 keep-alive clients", c.Connections)
	}
	if _, err := fakeccp.LoadTest(context.Background(), fakeccp.LoadOptions{URL: "https://example.com/", TLSConfig: &tls.Config{}}); err == nil {
		t.Error("LoadTest accepted a non-loopback host")
	}
}
