package ccp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// certError is a failure of the CertSource, during a handshake or before it.
type certError struct{ err error }

func (e *certError) Error() string { return "application certificate: " + e.err.Error() }
func (e *certError) Unwrap() error { return e.err }

// pinError says that no key of the server's verified chain matches a pin.
type pinError struct{}

func (pinError) Error() string { return "server public key matches none of the configured pins" }

// proxyError is a proxy's refusal of CONNECT.
type proxyError struct {
	status int
	text   string
	proxy  string // host:port, never the userinfo
}

func (e *proxyError) Error() string {
	return fmt.Sprintf("proxy %s refused CONNECT: %d %s", e.proxy, e.status, e.text)
}

// LoadRoots returns the system roots plus the PEM bundle: the trust of a
// store (and of doctor's probe of it).
func LoadRoots(bundle []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(bytes.TrimSpace(bundle)) > 0 && !pool.AppendCertsFromPEM(bundle) {
		return nil, errors.New("CA bundle holds no PEM certificate")
	}
	return pool, nil
}

// ParsePins decodes base64 SHA-256 SPKI pins (standard or URL alphabet,
// with or without padding, an optional "sha256/" prefix as in HPKP).
func ParsePins(pins []string) ([][]byte, error) {
	var out [][]byte
	for i, p := range pins {
		p = strings.TrimPrefix(strings.TrimSpace(p), "sha256/")
		var b []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err = enc.DecodeString(p); err == nil {
				break
			}
		}
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("pin %d is not a base64 SHA-256 digest", i+1)
		}
		out = append(out, b)
	}
	return out, nil
}

// parseProxy checks a store's proxy URL.
func parseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("proxy is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("proxy must be an http:// or https:// URL")
	}
	if u.Host == "" {
		return nil, errors.New("proxy URL has no host")
	}
	return u, nil
}

// bypassProxy reports whether host matches the NoProxy list.
func bypassProxy(host string, list []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip := net.ParseIP(host)
	for _, e := range list {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		if e == "*" {
			return true
		}
		if h, _, err := net.SplitHostPort(e); err == nil {
			e = h
		}
		if _, n, err := net.ParseCIDR(e); err == nil {
			if ip != nil && n.Contains(ip) {
				return true
			}
			continue
		}
		if eip := net.ParseIP(e); eip != nil {
			if ip != nil && eip.Equal(ip) {
				return true
			}
			continue
		}
		e = strings.TrimPrefix(strings.TrimPrefix(e, "*"), ".")
		if host == e || strings.HasSuffix(host, "."+e) {
			return true
		}
	}
	return false
}

// ProxyRoute is how a client reaches its servers: through a configured
// proxy (http:// or https://) with a bypass list, or the environment's
// (HTTPS_PROXY, NO_PROXY) when none is configured. The CCP client and the
// feed client (agent/feed) both use it, so they honour the same settings.
type ProxyRoute struct {
	proxy      *url.URL // nil: the environment
	noProxy    []string
	roots      *x509.CertPool
	tlsTimeout time.Duration
	tlsProxies sync.Map // "host:port" of https:// proxies -> their host name, for DialContext
}

// NewProxyRoute checks the proxy URL (empty: the environment). roots are
// trusted for the TLS to an https:// proxy.
func NewProxyRoute(proxy string, noProxy []string, roots *x509.CertPool, tlsTimeout time.Duration) (*ProxyRoute, error) {
	r := &ProxyRoute{noProxy: noProxy, roots: roots, tlsTimeout: tlsTimeout}
	if proxy != "" {
		var err error
		if r.proxy, err = parseProxy(proxy); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Proxy is the Transport's Proxy: the configured proxy with its bypass
// list, or the environment when none is configured.
//
// An https:// proxy is handed to the Transport as http:// on an explicit
// port, and DialContext does the TLS to it with a config of its own. The
// Transport would otherwise use the server's TLS config for that hop too,
// and offer a client certificate to any proxy that asks for one.
func (p *ProxyRoute) Proxy() func(*http.Request) (*url.URL, error) {
	choose := http.ProxyFromEnvironment
	if p.proxy != nil {
		choose = func(r *http.Request) (*url.URL, error) {
			if bypassProxy(r.URL.Hostname(), p.noProxy) {
				return nil, nil
			}
			return p.proxy, nil
		}
	}
	return func(r *http.Request) (*url.URL, error) {
		u, err := choose(r)
		if err != nil || u == nil || !strings.EqualFold(u.Scheme, "https") {
			return u, err
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		addr := net.JoinHostPort(u.Hostname(), port)
		p.tlsProxies.Store(addr, u.Hostname())
		plain := *u
		plain.Scheme, plain.Host = "http", addr
		return &plain, nil
	}
}

// DialContext dials addr, and does the TLS to an https:// proxy (see
// Proxy) with the roots and no client certificate: the proxy never sees
// the client's.
func (p *ProxyRoute) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, ok := p.tlsProxies.Load(addr)
		if !ok {
			return conn, nil
		}
		tc := tls.Client(conn, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.roots, ServerName: host.(string)})
		hctx, cancel := context.WithTimeout(ctx, p.tlsTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS to the proxy %s: %w", addr, err)
		}
		return tc, nil
	}
}

// Whether the server asked for the client certificate during a TLS 1.3
// handshake is what tells a server that asks for it only afterwards (by
// post-handshake authentication, which crypto/tls does not implement) from
// one that refuses the certificate. crypto/tls calls GetClientCertificate
// exactly when a CertificateRequest arrives, so the question is whether it
// was called for this connection's handshake.
//
// The Transport dials and shakes hands for one request with one context
// (the request's values, without its cancellation): the dial hook files a
// per-connection flag in the attempt's dialTrack, the certificate hook sets
// it, and the connection carries it to whichever request uses it later.

// trackKey is the context key of an attempt's *dialTrack.
type trackKey struct{}

// dialTrack follows one attempt: the connection being dialed for it, and
// the connection it got.
type dialTrack struct {
	dialing atomic.Pointer[connFlags]
	mu      sync.Mutex
	conn    net.Conn // from httptrace's GotConn
}

// connFlags is what one connection's handshake did.
type connFlags struct {
	certRequested atomic.Bool
}

// trackedConn carries its connFlags under the TLS connection.
type trackedConn struct {
	net.Conn
	flags *connFlags
}

// withTrack returns ctx carrying a new dialTrack, and a trace that records
// the connection the request gets.
func withTrack(ctx context.Context) (context.Context, *dialTrack) {
	t := &dialTrack{}
	ctx = context.WithValue(ctx, trackKey{}, t)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		t.mu.Lock()
		t.conn = i.Conn
		t.mu.Unlock()
	}}), t
}

func trackConn(ctx context.Context, conn net.Conn) net.Conn {
	t, _ := ctx.Value(trackKey{}).(*dialTrack)
	if t == nil {
		return conn
	}
	f := &connFlags{}
	t.dialing.Store(f)
	return &trackedConn{Conn: conn, flags: f}
}

// noCertRequestTLS13 reports whether the attempt's connection is TLS 1.3
// and its handshake had no CertificateRequest.
func (t *dialTrack) noCertRequestTLS13() bool {
	t.mu.Lock()
	conn := t.conn
	t.mu.Unlock()
	tc, ok := conn.(*tls.Conn)
	if !ok || tc.ConnectionState().Version != tls.VersionTLS13 {
		return false
	}
	tr, ok := tc.NetConn().(*trackedConn)
	return ok && !tr.flags.certRequested.Load()
}

// transports are the Transports of one client certificate: the default
// one, and one capped at TLS 1.2 for the servers that need it.
type transports struct {
	auto, tls12 *http.Transport
}

func (t *transports) closeIdle() {
	t.auto.CloseIdleConnections()
	t.tls12.CloseIdleConnections()
}

func (c *Client) newTransports() *transports {
	max := c.opts.TLSMaxVersion
	if max == 0 {
		max = tls.VersionTLS13
	}
	return &transports{auto: c.newTransport(max), tls12: c.newTransport(tls.VersionTLS12)}
}

// newTransport builds the one Transport used for one client certificate.
// A rotation replaces it, so that neither a pooled connection nor a cached
// TLS session (which would resume with the old identity) outlives the
// certificate it was made with.
func (c *Client) newTransport(maxVersion uint16) *http.Transport {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		MaxVersion: maxVersion,
		RootCAs:    c.roots,
		// IIS asks for the client certificate by renegotiation when the
		// certificate requirement is set per application.
		Renegotiation:        tls.RenegotiateOnceAsClient,
		GetClientCertificate: c.getClientCertificate,
		VerifyConnection:     c.verifyConnection,
		ClientSessionCache:   tls.NewLRUClientSessionCache(64),
	}
	dial := c.route.DialContext(&net.Dialer{
		Timeout:   c.opts.ConnectTimeout,
		KeepAlive: 30 * time.Second,
	})
	tr := &http.Transport{
		Proxy: c.route.Proxy(),
		// Each connection carries the flags of its handshake (trackConn).
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return trackConn(ctx, conn), nil
		},
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   c.opts.TLSTimeout,
		ResponseHeaderTimeout: c.opts.RequestTimeout,
		MaxIdleConns:          c.opts.PoolSize * len(c.servers),
		MaxIdleConnsPerHost:   c.opts.PoolSize,
		// Capping the connections, not only the idle ones, keeps a burst
		// of callers from opening connections that are closed again as
		// soon as they return: each would cost a handshake. Requests
		// beyond the pool wait for a connection.
		MaxConnsPerHost:        c.opts.PoolSize,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
		ForceAttemptHTTP2:      c.opts.HTTP2,
		OnProxyConnectResponse: func(_ context.Context, proxy *url.URL, _ *http.Request, res *http.Response) error {
			if res.StatusCode != http.StatusOK {
				_, text, _ := strings.Cut(res.Status, " ")
				return &proxyError{status: res.StatusCode, text: text, proxy: proxy.Host}
			}
			return nil
		},
	}
	if !c.opts.HTTP2 {
		// HTTP/2 forbids renegotiation: speak HTTP/1.1 only.
		cfg.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return tr
}

// getClientCertificate presents the certificate CertSource returns now, so
// that a rotated certificate is used by the next handshake.
func (c *Client) getClientCertificate(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if t, _ := info.Context().Value(trackKey{}).(*dialTrack); t != nil {
		if f := t.dialing.Load(); f != nil {
			f.certRequested.Store(true)
		}
	}
	cert, err := c.currentCert()
	if errors.Is(err, ErrNoClientCertificate) {
		return &tls.Certificate{}, nil // send none
	}
	if err != nil {
		return nil, &certError{err}
	}
	return cert, nil
}

// ErrNoClientCertificate, from a CertSource, makes ProbeServer connect
// without a client certificate (doctor, for a store whose application
// certificate has not arrived). Get still fails with apitype.ClassAppCertUnreadable.
var ErrNoClientCertificate = errors.New("no application certificate")

// currentCert asks the CertSource and refuses a certificate that could not
// be presented.
func (c *Client) currentCert() (*tls.Certificate, error) {
	cert, err := c.certSrc()
	if err == nil && (cert == nil || len(cert.Certificate) == 0 || cert.PrivateKey == nil) {
		err = errors.New("no certificate or no private key")
	}
	return cert, err
}

// verifyConnection counts handshakes and checks pins. It runs for full and
// resumed handshakes alike. Connections to an https:// proxy pass through
// here too; they are neither counted nor pinned.
func (c *Client) verifyConnection(cs tls.ConnectionState) error {
	if cs.DidResume {
		c.resumed.Add(1)
	} else {
		c.full.Add(1)
	}
	if len(c.pins) == 0 {
		return nil
	}
	if PinsMatch(cs.VerifiedChains, c.pins) {
		return nil
	}
	return pinError{}
}

// PinsMatch reports whether a verified chain holds a certificate whose
// SubjectPublicKeyInfo has one of the pins (from ParsePins). Pins are
// checked on top of chain verification, never instead of it.
func PinsMatch(chains [][]*x509.Certificate, pins [][]byte) bool {
	for _, chain := range chains {
		for _, cert := range chain {
			sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			for _, p := range pins {
				if bytes.Equal(sum[:], p) {
					return true
				}
			}
		}
	}
	return false
}
