package ccp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// Probe is what one probe of one server found, step by step, for doctor.
// It goes through the same Transport, proxy, trust, pins and TLS settings
// as every Get, so that doctor cannot drift from the client.
type Probe struct {
	Server string
	// Proxy is the proxy's host:port when the request went through one.
	Proxy string
	// Addrs are the DNS answers for the server's name (none through a
	// proxy, or for an IP address).
	Addrs  []string
	DNSErr error
	// Remote is the address connected to (the proxy's, through one).
	Remote string
	// TLS is the handshake with the server; nil if there was none.
	TLS *tls.ConnectionState
	// HTTPStatus is the answer's status, 0 if none came.
	HTTPStatus int
	// Found: the health request returned an account (wiped at once).
	Found bool
	// TLS12Fallback: the server asked for the client certificate only
	// after a TLS 1.3 handshake; the client now speaks TLS 1.2 to it.
	TLS12Fallback bool
	// Err is the failure, classified as Get classifies it.
	Err *Error
}

// ProbeServer probes server i (an index into Options.Servers). With req,
// it sends that request, once, to that server alone (with the TLS 1.3
// fallback a Get would make); without, it asks for the web-service path
// itself, which proves the connection, the server's certificate and the
// TLS settings, and never reaches CCP's application log.
func (c *Client) ProbeServer(ctx context.Context, i int, req *Request) Probe {
	p := Probe{Server: c.servers[i]}
	trs, e := c.transport(true)
	if e != nil {
		p.Err = e
		return p
	}
	var mu sync.Mutex
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSDone: func(di httptrace.DNSDoneInfo) {
			mu.Lock()
			defer mu.Unlock()
			p.DNSErr = di.Err
			for _, a := range di.Addrs {
				p.Addrs = append(p.Addrs, a.String())
			}
		},
		ConnectDone: func(_, addr string, err error) {
			if err == nil {
				mu.Lock()
				p.Remote = addr
				mu.Unlock()
			}
		},
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			if err == nil {
				mu.Lock()
				p.TLS = &cs
				mu.Unlock()
			}
		},
	})
	u, _ := url.Parse(p.Server + c.path + "/")
	if pu, err := c.route.Proxy()(&http.Request{URL: u}); err == nil && pu != nil {
		p.Proxy = pu.Host
	}

	corr := newCorrelationID()
	if req != nil {
		if err := req.validate(); err != nil {
			errors.As(err, &p.Err)
			return p
		}
		acct, e := c.attempt(ctx, trs, i, req.encode(), corr)
		if acct != nil {
			acct.Wipe()
			p.Found = true
		}
		p.Err = e
		if e != nil {
			p.HTTPStatus = e.HTTPStatus
		} else {
			p.HTTPStatus = http.StatusOK
		}
	} else {
		p.HTTPStatus, p.Err = c.reach(ctx, trs, i, u, corr)
	}
	mu.Lock()
	defer mu.Unlock()
	p.TLS12Fallback = c.tlsCap[i].Load() == tlsCapTLS12
	return p
}

// reach sends GET to the web-service path and reports the status; any
// HTTP answer proves the way to the server.
func (c *Client) reach(ctx context.Context, trs *transports, i int, u *url.URL, corr string) (int, *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	tr := trs.auto
	if c.opts.TLSMaxVersion == tls.VersionTLS12 || c.tlsCap[i].Load() == tlsCapTLS12 {
		tr = trs.tls12
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, &Error{Class: apitype.ClassStoreMisconfigured, Message: "cannot build the request URL", Server: c.servers[i], CorrelationID: corr}
	}
	hreq.Header.Set("User-Agent", "credagent")
	hreq.Header.Set("X-Correlation-ID", corr)
	c.attempts.Add(1)
	resp, err := tr.RoundTrip(hreq)
	if err != nil {
		e := classifyTransport(err)
		e.Server, e.CorrelationID = c.servers[i], corr
		return 0, e
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// IsDNSFailure reports whether e is a failure to resolve the server's name.
func IsDNSFailure(e *Error) bool {
	var dns *net.DNSError
	return e != nil && errors.As(e.Err, &dns)
}
