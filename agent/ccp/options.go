package ccp

import (
	"crypto/tls"
	"time"

	"github.com/rs/zerolog"
)

// DefaultPath is the web-service path of a CCP installed with its defaults.
const DefaultPath = "/AIMWebService"

// MaxResponseBytes bounds the body read from CCP. A real account answer is a
// few kilobytes; anything past this is refused as a server error.
const MaxResponseBytes = 1 << 20

// Defaults used when an Options duration or count is zero. The config's
// ccp section has the same defaults (agent/daemon tests that they agree).
// Every timeout is bounded: there is no way to ask for "wait forever".
const (
	DefaultConnectTimeout     = 5 * time.Second
	DefaultTLSTimeout         = 10 * time.Second
	DefaultRequestTimeout     = 30 * time.Second
	DefaultRetries            = 2 // the config's default; a zero Retries is none
	DefaultRetryBackoff       = 200 * time.Millisecond
	DefaultPasswordChangeWait = 30 * time.Second
	DefaultPoolSize           = 16

	// maxBackoff caps one sleep between attempts.
	maxBackoff = 5 * time.Second
	// idleConnTimeout closes pooled connections nobody used for this long.
	idleConnTimeout = 90 * time.Second
)

// CertSource returns the application's current certificate and private key.
// It is called before every Get (to notice a rotation) and on every TLS
// handshake, so it must be cheap: return the certificate already in memory.
// An error or a nil certificate makes Get fail with apitype.ClassAppCertUnreadable.
type CertSource func() (*tls.Certificate, error)

// Options configures a Client: one application identity against one store.
// The zero value of each duration and of PoolSize means its default.
type Options struct {
	// Servers are base URLs, https://host[:port], without path or query.
	// They are tried in order, the one that last answered first.
	Servers []string
	// Path is the web-service path, DefaultPath when empty.
	Path string
	// CABundle is PEM; its certificates are trusted on top of the system roots.
	CABundle []byte
	// Pins are base64 SHA-256 digests of a server SubjectPublicKeyInfo. When
	// set, the verified chain must contain a key with one of them, on top of
	// (never instead of) ordinary chain verification.
	Pins []string
	// Proxy is an http:// or https:// proxy URL used with CONNECT, so that
	// mTLS stays end to end. Empty: the environment (HTTPS_PROXY, NO_PROXY).
	Proxy string
	// NoProxy lists hosts that bypass Proxy: "host", ".suffix" or "suffix"
	// (both match sub-domains), an IP, a CIDR, or "*".
	NoProxy []string

	// ConnectTimeout bounds the TCP connect (to the server or the proxy).
	ConnectTimeout time.Duration
	// TLSTimeout bounds the TLS handshake.
	TLSTimeout time.Duration
	// RequestTimeout bounds one attempt: connect, handshake, request,
	// response headers and body.
	RequestTimeout time.Duration
	// TotalTimeout bounds one Get across all attempts, retries, failover and
	// backoff. Zero: twice RequestTimeout, plus PasswordChangeWait for
	// requests with FailRequestOnPasswordChange. The caller's context may
	// end it earlier.
	TotalTimeout time.Duration
	// Retries is the number of further rounds over the servers after a
	// transient failure. Negative means zero.
	Retries int
	// RetryBackoff is the first sleep between rounds; it doubles each round,
	// with jitter, up to 5s.
	RetryBackoff time.Duration
	// PasswordChangeWait bounds the wait-and-retry on APPAP282E.
	PasswordChangeWait time.Duration
	// PoolSize bounds the connections to each server, kept alive and reused;
	// requests beyond it wait for a connection rather than open one, so a
	// burst costs no extra handshakes.
	PoolSize int
	// HTTP2 lets HTTP/2 be negotiated. Off by default: IIS asks for client
	// certificates by TLS renegotiation, which HTTP/2 forbids.
	HTTP2 bool
	// TLSMaxVersion caps the TLS version: tls.VersionTLS12 or
	// tls.VersionTLS13. Zero is TLS 1.3 with the automatic fallback: a
	// server that asks for the client certificate only after a TLS 1.3
	// handshake (which crypto/tls cannot answer) is retried once at TLS 1.2,
	// and spoken to at TLS 1.2 from then on. TLS 1.3 means no fallback.
	TLSMaxVersion uint16

	// Log receives one debug line per attempt and a warning per retry or
	// failover. The zero Logger discards everything.
	Log zerolog.Logger
	// Observe, if set, is called after each HTTP attempt with the server's
	// base URL, the HTTP status (0 when no answer came) and its duration.
	Observe func(server string, status int, took time.Duration)
}

// TLSVersion maps a tls_max_version setting ("1.2", "1.3") to its
// crypto/tls constant; anything else (validated away before) is 0, the
// default.
func TLSVersion(s string) uint16 {
	switch s {
	case "1.2":
		return tls.VersionTLS12
	case "1.3":
		return tls.VersionTLS13
	}
	return 0
}

// withDefaults fills the zero values.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.TLSTimeout, DefaultTLSTimeout)
	def(&o.RequestTimeout, DefaultRequestTimeout)
	def(&o.RetryBackoff, DefaultRetryBackoff)
	def(&o.PasswordChangeWait, DefaultPasswordChangeWait)
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	return o
}

// totalTimeout is the budget of one Get.
func (o Options) totalTimeout(req Request) time.Duration {
	if o.TotalTimeout > 0 {
		return o.TotalTimeout
	}
	t := 2 * o.RequestTimeout
	if req.FailRequestOnPasswordChange {
		t += o.PasswordChangeWait
	}
	return t
}
