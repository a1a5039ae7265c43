package ccp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/secret"
	"github.com/rs/zerolog"
)

// Client fetches accounts from one CCP store with one application identity.
// It holds one connection pool; keep it and reuse it. It is safe for
// concurrent use.
type Client struct {
	opts    Options
	servers []string // normalised base URLs
	path    string
	certSrc CertSource
	roots   *x509.CertPool
	pins    [][]byte
	route   *ProxyRoute
	log     zerolog.Logger

	mu        sync.Mutex
	tr        *transports
	certLeaf  *tls.Certificate  // what certFP was computed for
	certFP    [sha256.Size]byte // of the whole chain presented
	preferred int
	flights   map[string]*flight
	srv       []ServerStats
	// tlsCap is, per server, what the agent learnt about its TLS 1.3
	// client-certificate handling (tlsCapUnknown ...), for its lifetime.
	tlsCap []atomic.Int32

	requests, coalesced, attempts atomic.Uint64
	full, resumed                 atomic.Uint64
	// retired is set by Retire: every attempt that ends closes the
	// connections that are idle by then.
	retired atomic.Bool
}

// Stats is a snapshot of a Client's counters.
type Stats struct {
	Requests          uint64 // Get calls
	Coalesced         uint64 // Get calls that joined a call already in flight
	Attempts          uint64 // HTTP requests sent to CCP servers
	FullHandshakes    uint64 // TLS handshakes with a server, not resumed
	ResumedHandshakes uint64 // TLS handshakes that resumed a session
	Servers           []ServerStats
}

// ServerStats is what the Client knows about one server.
type ServerStats struct {
	Server         string
	Successes      uint64
	Failures       uint64
	LastSuccess    time.Time
	LastError      time.Time
	LastErrorClass apitype.Class
	LastErrorCode  string
	// TLS12Fallback: this server asked for the client certificate only
	// after a TLS 1.3 handshake, so the client speaks TLS 1.2 to it.
	TLS12Fallback bool
}

// New checks opts and returns a Client. It does not connect. Its errors are
// *Error with apitype.ClassStoreMisconfigured (or apitype.ClassAppCertUnreadable when cert
// is nil).
func New(opts Options, cert CertSource) (*Client, error) {
	opts = opts.withDefaults()
	bad := func(msg string, err error) error {
		return &Error{Class: apitype.ClassStoreMisconfigured, Message: msg, Err: err}
	}
	if cert == nil {
		return nil, &Error{Class: apitype.ClassAppCertUnreadable, Message: "no certificate source"}
	}
	if len(opts.Servers) == 0 {
		return nil, bad("the store names no server", nil)
	}
	c := &Client{opts: opts, certSrc: cert, log: opts.Log, flights: map[string]*flight{}}
	for i, s := range opts.Servers {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.Host == "" {
			return nil, bad("server "+strconv.Itoa(i+1)+" is not a URL", nil)
		}
		if u.Scheme != "https" {
			return nil, bad("server "+strconv.Itoa(i+1)+" must be an https:// URL", nil)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
			return nil, bad("server "+strconv.Itoa(i+1)+" must be https://host[:port] without path, query or user; the path is set separately", nil)
		}
		base := "https://" + strings.ToLower(u.Host)
		c.servers = append(c.servers, base)
		c.srv = append(c.srv, ServerStats{Server: base})
	}
	p := "/" + strings.Trim(opts.Path, "/")
	if strings.ContainsAny(p, "?#%") {
		return nil, bad("the web-service path must be a plain path", nil)
	}
	c.path = p
	var err error
	if c.roots, err = LoadRoots(opts.CABundle); err != nil {
		return nil, bad(err.Error(), nil)
	}
	if c.pins, err = ParsePins(opts.Pins); err != nil {
		return nil, bad(err.Error(), nil)
	}
	if c.route, err = NewProxyRoute(opts.Proxy, opts.NoProxy, c.roots, opts.TLSTimeout); err != nil {
		return nil, bad(err.Error(), nil)
	}
	switch opts.TLSMaxVersion {
	case 0, tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, bad("the TLS maximum version must be 1.2 or 1.3", nil)
	}
	c.tlsCap = make([]atomic.Int32, len(c.servers))
	c.tr = c.newTransports()
	return c, nil
}

// Get fetches one account. Concurrent calls with an equal Request share one
// call to CCP; each caller gets its own Account, whose Content it must Wipe.
// Errors are *Error; ClassOf tells them apart. Get returns when ctx ends,
// without waiting for a shared call that other callers still wait for.
func (c *Client) Get(ctx context.Context, req Request) (*Account, error) {
	c.requests.Add(1)
	if err := req.validate(); err != nil {
		var e *Error
		errors.As(err, &e)
		e.CorrelationID = newCorrelationID()
		return nil, e
	}
	key := req.encode()

	c.mu.Lock()
	f, joined := c.flights[key]
	if !joined {
		f = &flight{done: make(chan struct{}), corr: newCorrelationID()}
		var fctx context.Context
		fctx, f.cancel = context.WithTimeout(context.WithoutCancel(ctx), c.opts.totalTimeout(req))
		c.flights[key] = f
		go c.run(fctx, f, key, req)
	} else {
		c.coalesced.Add(1)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		defer c.leave(f)
		if f.err != nil {
			e := *f.err
			return nil, &e
		}
		a := *f.acct
		a.Content = f.acct.Content.Clone()
		a.Properties = maps.Clone(f.acct.Properties)
		return &a, nil
	case <-ctx.Done():
		c.leave(f)
		return nil, &Error{Class: apitype.ClassTimeout, Message: "the caller gave up", CorrelationID: f.corr, Err: ctx.Err()}
	}
}

// flight is one call to CCP shared by the Get calls that wait for it. The
// last waiter to leave wipes the shared password; if every waiter leaves
// before the call ends, the call is cancelled.
//
// golang.org/x/sync/singleflight would share the call too, but it cannot
// tell when the last caller has made its copy, so the shared password could
// not be wiped, and it cannot cancel a call nobody waits for any more.
type flight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	corr    string
	waiters int // guarded by Client.mu
	acct    *Account
	err     *Error
}

func (c *Client) run(ctx context.Context, f *flight, key string, req Request) {
	acct, err := c.do(ctx, req, key, f.corr)
	f.cancel()
	c.mu.Lock()
	f.acct, f.err = acct, err
	delete(c.flights, key)
	if f.waiters == 0 && acct != nil {
		acct.Wipe()
	}
	close(f.done)
	c.mu.Unlock()
}

func (c *Client) leave(f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	select {
	case <-f.done:
		if f.acct != nil {
			f.acct.Wipe()
		}
	default:
		f.cancel()
	}
}

// do runs the retry and failover loop for one shared call.
func (c *Client) do(ctx context.Context, req Request, query, corr string) (*Account, *Error) {
	tr, e := c.transport(false)
	if e != nil {
		e.CorrelationID = corr
		return nil, e
	}
	var (
		last     *Error
		excluded = map[int]bool{}
		start    = time.Now()
		pcSleeps int
	)
	for round := 0; round <= c.opts.Retries; round++ {
		if round > 0 {
			if !sleep(ctx, backoff(c.opts.RetryBackoff, round)) {
				break
			}
		}
		for _, i := range c.order() {
			if excluded[i] {
				continue
			}
			for {
				acct, e := c.attempt(ctx, tr, i, query, corr)
				if e == nil {
					return acct, nil
				}
				last = e
				if e.Class == apitype.ClassPasswordChanging && req.FailRequestOnPasswordChange {
					pcSleeps++
					d := backoff(c.opts.RetryBackoff, pcSleeps)
					if time.Since(start)+d <= c.opts.PasswordChangeWait {
						c.log.Info().Str("correlation", corr).Str("server", c.servers[i]).Dur("wait", d).
							Msg("ccp: password change in progress, waiting")
						if sleep(ctx, d) {
							continue
						}
					}
				}
				break
			}
			switch dispositionOf(last) {
			case fatal:
				return nil, last
			case nextServer:
				excluded[i] = true
			}
			if ctx.Err() != nil {
				return nil, last
			}
			c.log.Warn().Str("correlation", corr).Str("server", c.servers[i]).Str("class", string(last.Class)).
				Str("code", last.Code).Str("error", last.Message).Msg("ccp: attempt failed, trying again")
		}
		if len(excluded) == len(c.servers) {
			break
		}
	}
	if last == nil {
		last = &Error{Class: apitype.ClassTimeout, Message: "no attempt could be made in time", Err: ctx.Err(), CorrelationID: corr}
	}
	return nil, last
}

// attempt makes one HTTP request to server i.
func (c *Client) attempt(ctx context.Context, trs *transports, i int, query, corr string) (acct *Account, e *Error) {
	server := c.servers[i]
	began := time.Now()
	actx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	defer func() {
		if c.retired.Load() {
			// The connection goes back to the pool after this returns
			// (net/http's read loop puts it there); closing the idle
			// ones also marks the transport to close each connection
			// that comes back, until a new request asks it for one, and
			// that request's attempt closes them again when it ends.
			trs.closeIdle()
		}
		if e != nil {
			e.Server, e.CorrelationID = server, corr
			if e.Class == apitype.ClassTimeout && ctx.Err() != nil {
				e.Message = "no answer within the request's overall budget"
			} else if e.Class == apitype.ClassTimeout && actx.Err() != nil {
				e.Message = "no answer within the per-attempt timeout"
			}
			c.record(i, e)
			if c.opts.Observe != nil {
				c.opts.Observe(server, e.HTTPStatus, time.Since(began))
			}
			c.log.Debug().Str("correlation", corr).Str("server", server).Int("status", e.HTTPStatus).
				Str("class", string(e.Class)).Str("code", e.Code).Str("error", e.Message).Dur("took", time.Since(began)).Msg("ccp: attempt")
			return
		}
		acct.Server, acct.CorrelationID = server, corr
		c.record(i, nil)
		if c.opts.Observe != nil {
			c.opts.Observe(server, http.StatusOK, time.Since(began))
		}
		c.log.Debug().Str("correlation", corr).Str("server", server).Int("status", http.StatusOK).
			Dur("took", time.Since(began)).Msg("ccp: attempt")
	}()

	capped := c.opts.TLSMaxVersion == tls.VersionTLS12 || c.tlsCap[i].Load() == tlsCapTLS12
	if capped {
		return c.exchange(actx, trs.tls12, server, query, corr)
	}
	acct, e, lateCert := c.exchange13(actx, trs.auto, server, query, corr)
	if e == nil || !lateCert || !asksLate(e) {
		return acct, e
	}
	// A TLS 1.3 handshake without a CertificateRequest, and an answer
	// that says no certificate arrived: the server asks for it after the
	// handshake, which crypto/tls cannot answer.
	if c.opts.TLSMaxVersion == tls.VersionTLS13 || c.tlsCap[i].Load() == tlsCapNotLate {
		e.LateCertRequest = true
		return nil, e
	}
	acct2, e2 := c.exchange(actx, trs.tls12, server, query, corr)
	if e2 != nil && e2.HTTPStatus == e.HTTPStatus && e2.Code == e.Code && e2.Class == e.Class {
		// TLS 1.2 fares no better: something else is wrong. Do not try
		// again with this server.
		c.tlsCap[i].CompareAndSwap(tlsCapUnknown, tlsCapNotLate)
		return nil, e
	}
	if c.tlsCap[i].CompareAndSwap(tlsCapUnknown, tlsCapTLS12) {
		c.log.Warn().Str("server", server).Str("correlation", corr).
			Msg("ccp: this server asked for the client certificate only after the TLS 1.3 handshake, which this agent cannot answer; " +
				"it now speaks TLS 1.2 to it until it restarts. Fix on the server: negotiate the client certificate at the handshake " +
				"(IIS: netsh http update sslcert ... clientcertnegotiation=enable), or set the store's tls_max_version to 1.2")
	}
	return acct2, e2
}

// The TLS 1.3 fallback states of a server.
const (
	tlsCapUnknown int32 = iota
	tlsCapTLS12         // asks for the certificate after a TLS 1.3 handshake: speak TLS 1.2
	tlsCapNotLate       // tried: TLS 1.2 did no better
)

// asksLate reports whether e is what a server answers when the client
// certificate it asks for after the handshake never comes: a 403 (IIS
// 403.7, Apache's 403, CCP's APPAP330E ...), a 500 that is not CCP's JSON
// (http.sys's 0x80070032), or a reset or closed connection.
func asksLate(e *Error) bool {
	switch {
	case e.HTTPStatus == http.StatusForbidden:
		return true
	case e.HTTPStatus == http.StatusInternalServerError:
		return strings.HasPrefix(e.Code, "HTTP ") || strings.HasPrefix(e.Code, "IIS ")
	case e.HTTPStatus == 0:
		return isConnReset(e.Err)
	}
	return false
}

// exchange13 is exchange that also reports whether the connection used was
// TLS 1.3 with no CertificateRequest in its handshake.
func (c *Client) exchange13(ctx context.Context, tr *http.Transport, server, query, corr string) (*Account, *Error, bool) {
	ctx, track := withTrack(ctx)
	acct, e := c.exchange(ctx, tr, server, query, corr)
	return acct, e, track.noCertRequestTLS13()
}

// exchange makes one HTTP request.
func (c *Client) exchange(actx context.Context, tr *http.Transport, server, query, corr string) (*Account, *Error) {
	c.attempts.Add(1)
	hreq, err := http.NewRequestWithContext(actx, http.MethodGet, server+c.path+"/api/Accounts?"+query, nil)
	if err != nil {
		return nil, &Error{Class: apitype.ClassStoreMisconfigured, Message: "cannot build the request URL"}
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "credagent")
	hreq.Header.Set("X-Correlation-ID", corr)
	resp, err := tr.RoundTrip(hreq)
	if err != nil {
		return nil, classifyTransport(err)
	}
	defer resp.Body.Close()
	body, err := secret.ReadAll(resp.Body, resp.ContentLength, MaxResponseBytes)
	defer clear(body)
	if err == nil && actx.Err() != nil {
		// On cancellation the transport may end a chunked body as if it
		// were complete; a body that raced the deadline is not trusted.
		err = actx.Err()
	}
	if err != nil {
		if errors.Is(err, secret.ErrTooLarge) {
			return nil, &Error{Class: apitype.ClassServerError, HTTPStatus: resp.StatusCode,
				Message: "the answer is larger than " + strconv.Itoa(MaxResponseBytes) + " bytes"}
		}
		e := classifyTransport(err)
		e.HTTPStatus = resp.StatusCode
		return nil, e
	}
	return decodeResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// transport returns the Transports for the certificate CertSource returns
// now, replacing the pool when the certificate or its chain has changed.
func (c *Client) transport(allowNone bool) (*transports, *Error) {
	cert, err := c.currentCert()
	if allowNone && errors.Is(err, ErrNoClientCertificate) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.tr, nil
	}
	if err != nil {
		return nil, &Error{Class: apitype.ClassAppCertUnreadable, Message: "the application certificate cannot be read", Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cert != c.certLeaf {
		fp := chainFingerprint(cert.Certificate)
		if c.certLeaf != nil && fp != c.certFP {
			old := c.tr
			c.tr = c.newTransports()
			old.closeIdle()
			// Connections busy now return to the old pool later; close
			// them once every attempt that could be using them has ended.
			time.AfterFunc(c.opts.RequestTimeout+time.Second, old.closeIdle)
			c.log.Info().Str("fingerprint", hex.EncodeToString(fp[:8])).
				Msg("ccp: application certificate changed; new connections will present it")
		}
		c.certLeaf, c.certFP = cert, fp
	}
	return c.tr, nil
}

// order returns server indexes, the one that last answered first.
func (c *Client) order() []int {
	c.mu.Lock()
	p := c.preferred
	c.mu.Unlock()
	out := make([]int, 0, len(c.servers))
	out = append(out, p)
	for i := range c.servers {
		if i != p {
			out = append(out, i)
		}
	}
	return out
}

// record updates the server's statistics and the preferred server.
func (c *Client) record(i int, e *Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.srv[i]
	now := time.Now()
	if e == nil {
		s.Successes++
		s.LastSuccess = now
		c.preferred = i
		return
	}
	s.Failures++
	s.LastError, s.LastErrorClass, s.LastErrorCode = now, e.Class, e.Code
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	srv := append([]ServerStats(nil), c.srv...)
	c.mu.Unlock()
	for i := range srv {
		srv[i].TLS12Fallback = c.tlsCap[i].Load() == tlsCapTLS12
	}
	return Stats{
		Requests:          c.requests.Load(),
		Coalesced:         c.coalesced.Load(),
		Attempts:          c.attempts.Load(),
		FullHandshakes:    c.full.Load(),
		ResumedHandshakes: c.resumed.Load(),
		Servers:           srv,
	}
}

// CloseIdleConnections closes the pooled connections that are not in use.
// Connections in use stay open and go back to the pool when their request
// ends; see Retire.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	tr := c.tr
	c.mu.Unlock()
	tr.closeIdle()
}

// Retire is for a client that has been replaced (by a delivery with a new
// certificate or server list, or a reload): it closes the idle connections
// now and each of the others once its request ends, instead of leaving them
// pooled until their idle timeout, each with the last answers it read still
// in its buffers. Requests already holding the client still work; any made
// after Retire opens a connection and closes it when done.
func (c *Client) Retire() {
	c.retired.Store(true)
	c.CloseIdleConnections()
}

// chainFingerprint is a digest of the whole chain a client presents, so
// that a new intermediate with the same leaf also gets new connections.
func chainFingerprint(chain [][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, der := range chain {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(der)))
		h.Write(n[:])
		h.Write(der)
	}
	var fp [sha256.Size]byte
	h.Sum(fp[:0])
	return fp
}

// backoff is the sleep before round n (n >= 1): base doubled n-1 times,
// capped, with equal jitter (half fixed, half random).
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for k := 1; k < n && d < maxBackoff; k++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	half := d / 2
	return half + mrand.N(half+1)
}

// sleep waits d or until ctx ends; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func newCorrelationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
