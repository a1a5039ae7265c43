package config

import (
	"net"
	"time"
)

// Metrics configures the Prometheus metrics (agent/metrics). Both outputs
// are off by default outside dev mode: no file and no listener.
type Metrics struct {
	// Textfile is where the metrics are written, atomically, in the text
	// format, for node_exporter's or windows_exporter's textfile collector
	// (a directory they read, a name ending in .prom). Empty: not written.
	Textfile string `yaml:"textfile"`
	// Listen serves /metrics on this loopback address (127.0.0.1:9464,
	// [::1]:9464, localhost:9464). Empty: no listener. Any other address
	// is refused: the page is for a local scraper, not the network.
	Listen string `yaml:"listen"`
	// Interval is how often the textfile is rewritten: 1s to 15s.
	Interval time.Duration `yaml:"interval"`
}

// MaxMetricsInterval bounds metrics.interval: the textfile is never older
// than this.
const MaxMetricsInterval = 15 * time.Second

func validateMetrics(m Metrics, bad func(key, format string, a ...any)) {
	if m.Interval < time.Second || m.Interval > MaxMetricsInterval {
		bad("metrics.interval", "must be between 1s and %v, got %v", MaxMetricsInterval, m.Interval)
	}
	if m.Listen != "" && !IsLoopbackAddr(m.Listen) {
		bad("metrics.listen", "%q is not a loopback address with a port (127.0.0.1:9464, [::1]:9464 or localhost:9464)", m.Listen)
	}
}

// IsLoopbackAddr reports whether addr is host:port with a loopback IP or
// "localhost" as host and a port.
func IsLoopbackAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
