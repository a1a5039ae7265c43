package client

// The client's transport: HTTP/1.1 over the agent's Unix socket or named
// pipe, one request at a time per connection, done on the caller's own
// goroutine.
//
// net/http's Transport runs a read loop and a write loop goroutine per
// connection, so each request is handed to the write loop and its answer
// handed back from the read loop: two wake-ups of other goroutines per
// request, which cost more than the request itself on a loaded machine.
// Here the caller takes an idle connection from a small pool (or dials one),
// writes the request with one write, reads the answer through the
// connection's own bufio.Reader with http.ReadResponse, reads the body whole
// and bounded, and puts the connection back only when the exchange was
// complete, without error, and kept alive.
//
// Cancellation without a goroutine: the connection's deadline is the
// context's, and context.AfterFunc sets a deadline in the past when the
// context is cancelled, which unblocks a pending read or write. A
// connection whose exchange met a cancellation or any error is closed,
// never reused.
//
// Stale connections and the one retry. With no read loop watching idle
// connections, a pooled connection that the agent has since closed (its
// idle timeout, a restart, a shutdown) is found dead only when used. The
// request is then sent once more, on a freshly dialed connection, when all
// of these hold:
//   - the connection came from the pool (it had answered before);
//   - writing the request failed, or reading the answer failed before a
//     single byte of it arrived;
//   - the failure was not a timeout, and the context is still live.
//
// Every request of this API may be repeated: resolve, check and status
// read; sync asks for one more feed poll; the store probe probes. This is
// the case net/http retries for a request with a rewindable body when the
// server closed an idle connection; unlike net/http it applies to POST too
// (net/http replays a POST only if nothing was written, having seen the
// close in its read loop beforehand). What a repeat can cost: if the agent
// read the request and then died without answering, the repeat, on a fresh
// connection to a restarted agent, makes one more audited resolution.
// A first request on a fresh connection is never repeated.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/secret"
)

const (
	// maxResponseHeaderBytes bounds an answer's status line and headers.
	maxResponseHeaderBytes = 64 << 10
	// maxIdleConns caps the idle connections kept; more are closed when
	// their exchange ends.
	maxIdleConns = 64
	// idleTimeout is how long an idle connection is kept. It is below the
	// agent's default api idle timeout (60 s), so that a connection the
	// agent is about to close is seldom picked.
	idleTimeout = 30 * time.Second
)

var (
	errHeaderTooLarge = fmt.Errorf("the answer's headers exceed %d bytes", maxResponseHeaderBytes)
	// aLongTimeAgo is a deadline in the past: it fails a pending read or
	// write at once.
	aLongTimeAgo = time.Unix(1, 0)
)

// pool holds a client's idle connections, most recently used last.
type pool struct {
	dial func(context.Context) (net.Conn, error)

	mu   sync.Mutex
	idle []*conn
}

// conn is one connection to the agent; one exchange at a time uses it.
type conn struct {
	nc     net.Conn
	lr     limitReader // under br: bounds what one answer may take
	br     *bufio.Reader
	idleAt time.Time
	// reused says the connection has answered before.
	reused bool
	// deadline is the deadline last set on nc.
	deadline time.Time
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc}
	c.lr.r = nc
	c.br = bufio.NewReader(&c.lr)
	return c
}

// limitReader fails with err once n bytes have been read.
type limitReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// get returns an idle connection, or nil. Connections idle for longer than
// idleTimeout are closed on the way.
func (p *pool) get() *conn {
	now := time.Now()
	var expired []*conn
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleAt) >= idleTimeout {
		n++
	}
	if n > 0 {
		expired = append(expired, p.idle[:n]...)
		rest := copy(p.idle, p.idle[n:])
		clear(p.idle[rest:])
		p.idle = p.idle[:rest]
	}
	var c *conn
	if k := len(p.idle); k > 0 {
		c = p.idle[k-1]
		p.idle[k-1] = nil
		p.idle = p.idle[:k-1]
	}
	p.mu.Unlock()
	for _, e := range expired {
		e.nc.Close()
	}
	return c
}

// put makes c idle, or closes it if the pool is full.
func (p *pool) put(c *conn) {
	c.idleAt = time.Now()
	c.reused = true
	p.mu.Lock()
	if len(p.idle) < maxIdleConns {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// closeIdle closes every idle connection; connections in use are pooled
// again when their exchange ends, as net/http's CloseIdleConnections does.
func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// idleCount is the number of idle connections.
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// send makes one request and returns the answer with its body read whole.
// Its errors are those do returns.
func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, []byte, error) {
	resp, b, err := c.pool.roundTrip(ctx, buildRequest(method, path, body))
	switch {
	case err == nil:
		return resp, b, nil
	case errors.Is(err, secret.ErrTooLarge):
		return nil, nil, errors.New("credagent: answer too large")
	case resp != nil:
		// The answer's headers arrived, its body did not.
		return nil, nil, fmt.Errorf("credagent: reading the answer: %w", err)
	default:
		return nil, nil, fmt.Errorf("credagent: %s %s via %s: %w", method, path, c.path, err)
	}
}

// buildRequest writes the request as net/http's Transport did for this
// client: the same request line and headers, the body framed by
// Content-Length.
func buildRequest(method, path string, body []byte) []byte {
	b := make([]byte, 0, 160+len(body))
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: credagent\r\nUser-Agent: Go-http-client/1.1\r\n"...)
	if body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\nContent-Type: application/json\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// roundTrip sends req on a pooled connection, or a new one, and reads the
// answer. A non-nil response with an error means the headers arrived but
// not the whole body.
func (p *pool) roundTrip(ctx context.Context, req []byte) (*http.Response, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if c := p.get(); c != nil {
		resp, b, err, retry := p.exchange(ctx, c, req)
		if !retry {
			return resp, b, err
		}
	}
	nc, err := p.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	resp, b, err, _ := p.exchange(ctx, newConn(nc), req)
	return resp, b, err
}

// exchange does one request on c, which it pools again or closes. retry
// says the request may be sent again on a fresh connection (see the top of
// this file).
func (p *pool) exchange(ctx context.Context, c *conn, req []byte) (resp *http.Response, body []byte, err error, retry bool) {
	dl, _ := ctx.Deadline()
	if !dl.Equal(c.deadline) {
		if err := c.nc.SetDeadline(dl); err != nil {
			c.nc.Close()
			return nil, nil, err, false
		}
		c.deadline = dl
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	resp, body, keep, nothingRead, err := c.exchange(req)
	if !stop() {
		// Cancelled during the exchange: the deadline is (or is about to
		// be) in the past. A complete answer still stands.
		keep = false
	}
	if err != nil {
		c.nc.Close()
		if cerr := ctxErr(ctx, dl, err); cerr != nil {
			return resp, nil, cerr, false
		}
		return resp, nil, err, c.reused && nothingRead && !isTimeout(err)
	}
	if keep {
		p.put(c)
	} else {
		c.nc.Close()
	}
	return resp, body, nil, false
}

// exchange writes req and reads the answer. keep says c may be reused;
// nothingRead that the failure came before any byte of the answer.
func (c *conn) exchange(req []byte) (resp *http.Response, body []byte, keep, nothingRead bool, err error) {
	c.lr.n, c.lr.err = maxResponseHeaderBytes, errHeaderTooLarge
	_, werr := c.nc.Write(req)
	// Even when the write failed, an answer may be waiting: the agent
	// answers a connection it refuses at accept with a 503 and closes it
	// without reading. Read it; the connection is not reused.
	if _, err := c.br.Peek(1); err != nil {
		if werr != nil {
			err = werr
		}
		return nil, nil, false, true, err
	}
	resp, err = readAnswer(c.br)
	if err != nil {
		return nil, nil, false, false, err
	}
	if resp.StatusCode < 200 {
		return nil, nil, false, false, fmt.Errorf("unexpected informational answer %q", resp.Status)
	}
	// The body: at most maxResponseBytes, decoded; the bound on the bytes
	// underneath only stops an endless chunked stream.
	c.lr.n, c.lr.err = 2*maxResponseBytes+maxResponseHeaderBytes, secret.ErrTooLarge
	body, err = secret.ReadAll(resp.Body, resp.ContentLength, maxResponseBytes)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return resp, nil, false, false, err
	}
	// Bytes past the answer are none this client asked for: the answer
	// stands, the connection goes.
	return resp, body, werr == nil && !resp.Close && c.br.Buffered() == 0, false, nil
}

// ctxErr returns the context's error when it explains err.
func ctxErr(ctx context.Context, dl time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	// The connection's deadline can pass a moment before the context's.
	if !dl.IsZero() && isTimeout(err) && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
