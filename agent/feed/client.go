package feed

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/credagent/credagent/agent/ccp"
)

// ClientOptions configure the HTTP client of a feed.
type ClientOptions struct {
	// CABundle, if set, is the only trust (PEM certificates): the feed's
	// CA is pinned. Empty: the system roots.
	CABundle []byte
	// Proxy and NoProxy are as for a CCP store: empty Proxy means the
	// environment (HTTPS_PROXY, NO_PROXY).
	Proxy   string
	NoProxy []string
	// Certificate, if set, is offered when the server asks for one.
	Certificate *tls.Certificate
	// ConnectTimeout and TLSTimeout bound the dial and the handshake;
	// HeaderTimeout the wait for the response headers. Defaults 10 s.
	ConnectTimeout time.Duration
	TLSTimeout     time.Duration
	HeaderTimeout  time.Duration
	// Header are the extra headers the feed sends; when there are any, a
	// redirect to another host is refused, so that they never reach it.
	Header http.Header
}

// ErrInsecureRedirect is a redirect to a URL that is not https.
var ErrInsecureRedirect = errors.New("feed: redirect to a URL that is not https refused")

// NewHTTPClient builds the client of a feed: HTTPS only (a redirect to
// http is refused), TLS 1.2 at least, the proxy route the CCP client uses
// (ccp.ProxyRoute), bounded header size and timeouts.
func NewHTTPClient(o ClientOptions) (*http.Client, error) {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.TLSTimeout <= 0 {
		o.TLSTimeout = 10 * time.Second
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	var roots *x509.CertPool
	if len(o.CABundle) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(o.CABundle) {
			return nil, errors.New("feed: the CA bundle holds no PEM certificate")
		}
	}
	proxyRoots := roots
	if proxyRoots == nil {
		var err error
		if proxyRoots, err = ccp.LoadRoots(nil); err != nil {
			return nil, fmt.Errorf("feed: %w", err)
		}
	}
	route, err := ccp.NewProxyRoute(o.Proxy, o.NoProxy, proxyRoots, o.TLSTimeout)
	if err != nil {
		return nil, fmt.Errorf("feed: proxy: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if o.Certificate != nil {
		cert := o.Certificate
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{
		Proxy:                  route.Proxy(),
		DialContext:            route.DialContext(&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}),
		TLSClientConfig:        cfg,
		TLSHandshakeTimeout:    o.TLSTimeout,
		ResponseHeaderTimeout:  o.HeaderTimeout,
		MaxIdleConns:           4,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 32 << 10,
		ForceAttemptHTTP2:      true,
	}
	withHeaders := len(o.Header) > 0
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return ErrInsecureRedirect
			}
			if len(via) >= 5 {
				return errors.New("feed: more than 5 redirects")
			}
			if withHeaders && req.URL.Host != via[0].URL.Host {
				return errors.New("feed: redirect to another host refused: the feed's headers would follow it")
			}
			return nil
		},
	}, nil
}
