package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Feed configures deliveries pulled over the network (agent/feed): a
// static tree of signed manifests and sealed deliveries on any web server.
// Off while URLs is empty.
type Feed struct {
	// URLs are the feed's base URLs, https://host[:port][/path], tried in
	// order.
	URLs []string `yaml:"urls"`
	// PollInterval is the mean time between polls; each is jittered by
	// ±25% so that a fleet does not poll in step.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout bounds one request, its body included.
	Timeout time.Duration `yaml:"timeout"`
	// CAFile, if set, is a PEM bundle that is the only trust for the
	// feed's servers (pinned). Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// Proxy and NoProxy are as for a CCP store. Empty Proxy: the
	// environment (HTTPS_PROXY, NO_PROXY).
	Proxy   string   `yaml:"proxy"`
	NoProxy []string `yaml:"no_proxy"`
	// Headers are sent with every request (a token for a feed that
	// requires authentication). They are never logged.
	Headers map[string]string `yaml:"headers"`
	// ClientCert and ClientKey are PEM files of a client certificate for
	// a feed that requires one.
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// MaxManifestBytes bounds a manifest; deliveries are bounded by
	// inbox.max_delivery_bytes.
	MaxManifestBytes int64 `yaml:"max_manifest_bytes"`
	// FailClosedAfter, when set, refuses every resolution (class
	// feed_stale) once a followed manifest has been expired this long.
	// Zero: off; an expired manifest is only reported.
	FailClosedAfter time.Duration `yaml:"fail_closed_after"`
}

// Defaults of the feed section.
const (
	DefaultFeedPollInterval     = time.Minute
	DefaultFeedTimeout          = 30 * time.Second
	DefaultFeedMaxManifestBytes = 1 << 20
)

// Enabled reports whether a feed is configured.
func (f Feed) Enabled() bool { return len(f.URLs) > 0 }

func (f Feed) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("feed.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for i, s := range f.URLs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
			bad(fmt.Sprintf("urls[%d]", i), "want https://host[:port][/path] without user, query or fragment (a feed is served over HTTPS only), got %q", s)
		}
	}
	if f.PollInterval < time.Second || f.PollInterval > 24*time.Hour {
		bad("poll_interval", "must be between 1s and 24h, got %v", f.PollInterval)
	}
	if f.Timeout < time.Second || f.Timeout > 10*time.Minute {
		bad("timeout", "must be between 1s and 10m, got %v", f.Timeout)
	}
	for key, p := range map[string]string{"ca_file": f.CAFile, "client_cert": f.ClientCert, "client_key": f.ClientKey} {
		if p != "" && !filepath.IsAbs(p) {
			bad(key, "must be an absolute path, got %q", p)
		}
	}
	if (f.ClientCert == "") != (f.ClientKey == "") {
		bad("client_cert", "client_cert and client_key go together")
	}
	if f.Proxy != "" {
		if u, err := url.Parse(f.Proxy); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("proxy", "must be an http:// or https:// URL")
		}
	}
	for k, v := range f.Headers {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) }) {
			bad("headers", "%q is not a header name", k)
		}
		switch strings.ToLower(k) {
		case "host", "if-none-match", "content-length", "connection", "transfer-encoding":
			bad("headers", "%s is set by the agent", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			bad("headers", "the value of %s holds a line break", k)
		}
	}
	if f.MaxManifestBytes < 1024 || f.MaxManifestBytes > DefaultFeedMaxManifestBytes {
		bad("max_manifest_bytes", "must be between 1024 and %d, got %d", DefaultFeedMaxManifestBytes, f.MaxManifestBytes)
	}
	if f.FailClosedAfter < 0 {
		bad("fail_closed_after", "must not be negative")
	}
	return errs
}
