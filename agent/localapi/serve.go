package localapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// The local API's HTTP/1.1 server.
//
// It is a small loop per connection instead of net/http's Server, because
// a resolution's cost on the agent's side was mostly net/http's: a
// goroutine started per request to watch for the client hanging up, the
// deadline moves and goroutine hand-offs that go with it, and per-request
// buffers (bench/README.md, "Where the agent's time goes"). Requests are
// still parsed by net/http (http.ReadRequest, the parser its Server uses)
// and routed by its ServeMux; what the loop adds is the connection's life:
//
//   - one request at a time per connection, answered in order (pipelined
//     requests wait in the connection's buffer);
//   - the request line and headers are bounded (maxHeaderBytes, 431) and,
//     with the body, must arrive within Timeouts.ReadTimeout; a connection
//     is closed once idle for Timeouts.IdleTimeout, and an answer must be
//     written within Timeouts.WriteTimeout;
//   - what net/http's Server refuses is refused the same way: an HTTP
//     version other than 1.x (505), a repeated or malformed Host header, a
//     malformed header (400), an Expect other than 100-continue
//     (417); "Expect: 100-continue" is answered when the handler reads the
//     body;
//   - a body the handler did not read to its end is not skipped: the
//     answer says "Connection: close" and the connection is closed, as it
//     is after every HTTP/1.0 request (whose Transfer-Encoding, if any,
//     http.ReadRequest has dropped unseen); an HTTP/1.0 request's
//     "Expect: 100-continue" is ignored;
//   - the answer is built in one buffer (headers and body, with
//     Content-Length), written with one write and zeroed at once: no copy of
//     a password stays in a connection's buffers;
//   - a handler that panics is logged and its connection closed, as
//     net/http does.
//
// Deadlines are moved only when they matter. Each move is a runtime timer
// update, and a request would otherwise move its connection's deadlines
// four times (the idle wait, the headers, the body, the answer). So:
//
//   - the read deadline for the headers, and the handler's for the body
//     (respWriter.SetReadDeadline), are set only when what they bound is
//     not already whole in the connection's buffer: a request that arrived
//     in one piece, as the clients send it, is parsed without reading the
//     socket, so no deadline can fire for it;
//   - the idle and write deadlines (and those above, when set) are left
//     where they are when the one in force is at most a tenth of the
//     timeout earlier than asked, and never when it is later: a timeout
//     fires after 0.9 to 1 times its configured value, never later.
//
// Unlike net/http, a request's context is not cancelled when its client
// hangs up: watching for that costs a read in flight per request. A
// resolution whose caller has gone finishes (within the CCP timeouts) and
// is audited as fetched; its answer's write fails, which is logged.

// serveConns is the set of open connections, for Serve's shutdown.
type serveConns struct {
	mu      sync.Mutex
	conns   map[*serverConn]bool // the connection -> idle
	closing bool
	wg      sync.WaitGroup
}

// add registers c; false once shutting down.
func (cs *serveConns) add(c *serverConn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closing {
		return false
	}
	cs.conns[c] = false
	cs.wg.Add(1)
	return true
}

func (cs *serveConns) remove(c *serverConn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
	cs.wg.Done()
}

// setIdle marks c idle (waiting for its next request) or active. It
// returns false when the server is shutting down: an idle connection is
// then closed, and an active one is closed after its answer.
func (cs *serveConns) setIdle(c *serverConn, idle bool) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.conns[c] = idle
	return !cs.closing
}

// shutdown closes the idle connections and those that become idle, and
// waits up to grace for the active ones to finish. It reports whether all
// did.
func (cs *serveConns) shutdown(grace time.Duration) bool {
	cs.mu.Lock()
	cs.closing = true
	for c, idle := range cs.conns {
		if idle {
			c.nc.Close()
		}
	}
	cs.mu.Unlock()
	done := make(chan struct{})
	go func() { cs.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// closeAll closes every connection and waits for their goroutines.
func (cs *serveConns) closeAll() {
	cs.mu.Lock()
	cs.closing = true
	for c := range cs.conns {
		c.nc.Close()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
}

// Serve serves ln until ctx is done, then stops accepting and lets in-flight
// requests finish within Config.ShutdownGrace before closing what is left.
// It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cs := &serveConns{conns: map[*serverConn]bool{}}
	// Handlers' contexts end with the connection's, and all of them when a
	// shutdown's grace is over.
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.accept(base, &limitListener{Listener: ln, cs: s.callers}, cs) }()
	select {
	case err := <-errc:
		cancel()
		cs.closeAll()
		return fmt.Errorf("localapi.Serve: %w", err)
	case <-ctx.Done():
	}
	ln.Close()
	<-errc
	if !cs.shutdown(s.cfg.ShutdownGrace) {
		s.opts.Log.Warn().Msg("local API: requests still running after the shutdown grace; closing them")
		cancel()
		cs.closeAll()
	}
	return nil
}

// accept accepts connections until ln is closed, retrying errors that
// pass (such as running out of descriptors) with a growing pause, as
// net/http does.
func (s *Server) accept(ctx context.Context, ln net.Listener, cs *serveConns) error {
	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.opts.Log.Warn().Err(err).Dur("retry_in", pause).Msg("local API: accept failed")
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		sc := newServerConn(s, nc)
		if !cs.add(sc) {
			nc.Close()
			continue
		}
		go sc.serve(ctx, cs)
	}
}

// serverConn is one connection being served.
type serverConn struct {
	s    *Server
	nc   net.Conn
	lr   io.LimitedReader // under br: bounds the request line and headers
	br   *bufio.Reader
	rw   respWriter
	out  []byte   // the answer being written; zeroed once written
	keys []string // the answer's header names, sorted
	// rdl and wdl are the read and write deadlines in force on nc.
	rdl, wdl time.Time
}

// readWithin makes reads of nc fail after d from now, or up to a tenth of d
// sooner (the deadline in force is kept if it is that close).
func (sc *serverConn) readWithin(d time.Duration) { within(&sc.rdl, sc.nc.SetReadDeadline, d) }

// writeWithin is readWithin for writes.
func (sc *serverConn) writeWithin(d time.Duration) { within(&sc.wdl, sc.nc.SetWriteDeadline, d) }

// within moves the deadline in force, *dl, to d from now with set, unless it
// is already between a tenth of d sooner and then.
func within(dl *time.Time, set func(time.Time) error, d time.Duration) {
	if want := time.Now().Add(d); dl.After(want) || dl.Before(want.Add(-d/10)) {
		set(want)
		*dl = want
	}
}

// headersBuffered reports whether the buffer holds the end of a request's
// headers, so that http.ReadRequest will not read the socket.
func (sc *serverConn) headersBuffered() bool {
	b, _ := sc.br.Peek(sc.br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n"))
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	sc := &serverConn{s: s, nc: nc}
	sc.lr.R = nc
	sc.br = bufio.NewReaderSize(&sc.lr, 4<<10)
	sc.rw.conn = sc
	sc.rw.header = make(http.Header, 4)
	return sc
}

// headerLimit bounds the request line and headers as net/http's Server
// does: MaxHeaderBytes plus its 4 KiB of slack.
const headerLimit = maxHeaderBytes + 4096

func (sc *serverConn) serve(ctx context.Context, cs *serveConns) {
	defer cs.remove(sc)
	defer sc.nc.Close()
	defer func() {
		if p := recover(); p != nil {
			sc.s.opts.Log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).
				Msg("local API: a handler panicked; its connection is closed")
		}
	}()
	ctx, cancel := context.WithCancel(connContext(ctx, sc.nc))
	defer cancel()
	t := sc.s.cfg.Timeouts
	for first := true; ; first = false {
		// Wait for the next request: the read timeout for the first, the
		// idle timeout between them.
		if !cs.setIdle(sc, true) {
			return
		}
		wait := t.IdleTimeout
		if first {
			wait = t.ReadTimeout
		}
		sc.lr.N = headerLimit
		sc.readWithin(wait)
		if _, err := sc.br.Peek(1); err != nil {
			return
		}
		if !cs.setIdle(sc, false) {
			return
		}
		if !sc.headersBuffered() {
			sc.readWithin(t.ReadTimeout)
		}
		req, err := http.ReadRequest(sc.br)
		if err != nil {
			sc.refuseMalformed(err)
			return
		}
		sc.lr.N = 1<<63 - 1 // the body is bounded by its Content-Length
		if status, msg := unservable(req); status != 0 {
			sc.rw.reset(req)
			sc.rw.closeAfter = true
			writeError(&sc.rw, status, apitype.ClassInvalidRequest, msg)
			sc.finish()
			return
		}
		if !sc.handle(ctx, req) {
			return
		}
	}
}

// handle serves one request and writes its answer. It reports whether the
// connection may serve another.
func (sc *serverConn) handle(ctx context.Context, req *http.Request) bool {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body := &reqBody{r: req.Body, left: req.ContentLength}
	// An HTTP/1.0 client cannot take an interim answer: its expectation is
	// ignored (RFC 9110 10.1.1), as net/http's Server does.
	if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 && strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		body.cont = sc
	}
	req.Body = body
	req = req.WithContext(rctx)
	sc.rw.reset(req)
	sc.rw.reqBody = body
	sc.writeWithin(sc.s.cfg.WriteTimeout)
	sc.s.handler.ServeHTTP(&sc.rw, req)
	// A body left unread is not skipped: the connection ends with this
	// answer. So does every HTTP/1.0 exchange: http.ReadRequest drops a
	// Transfer-Encoding header from an HTTP/1.0 request before badShape
	// can refuse it, and RFC 9112 6.1 has the server treat such framing as
	// faulty and close the connection after the message.
	if req.Close || body.left != 0 || !req.ProtoAtLeast(1, 1) {
		sc.rw.closeAfter = true
	}
	if !sc.finish() {
		// The caller left before its answer: a resolution's audit record
		// says what was fetched, this line that it was not handed over.
		sc.s.opts.Log.Warn().Str("request", req.Method+" "+req.URL.Path).Int("status", sc.rw.status).
			Msg("local API: the answer could not be written; the caller hung up or stopped reading")
		return false
	}
	return !sc.rw.closeAfter
}

// unservable is what net/http's Server refuses before any handler runs.
func unservable(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	// http.ReadRequest has refused a repeated Host header and moved the
	// value to req.Host. An absent or empty one is not refused: nothing on
	// a local socket is reached by name.
	if !validHost(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !validHeaderName(k) {
			return http.StatusBadRequest, "invalid header name " + strconv.Quote(k)
		}
		for _, v := range vv {
			if !validHeaderValue(v) {
				return http.StatusBadRequest, "invalid value in header " + strconv.Quote(k)
			}
		}
	}
	if e := req.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
		return http.StatusExpectationFailed, "unsupported Expect header"
	}
	return 0, ""
}

// validHost accepts what a Host header may hold: the bytes of a host name,
// an IP literal and a port, nothing else (RFC 3986's reg-name, IP-literal).
func validHost(h string) bool { return alnumOr(h, "!$&'()*+,-.:;=[]_~%") }

// validHeaderName accepts a token (RFC 9110 5.1).
func validHeaderName(k string) bool { return k != "" && alnumOr(k, "!#$%&'*+-.^_`|~") }

// alnumOr reports whether every byte of s is an ASCII letter or digit, or
// one of punct.
func alnumOr(s, punct string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(punct, c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control bytes other than tab (RFC 9110 5.5).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// refuseMalformed answers a request that could not be read, if the
// connection still has one to answer.
func (sc *serverConn) refuseMalformed(err error) {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
		if sc.lr.N > 0 {
			return // the client left or stalled: nobody to answer
		}
	}
	status, msg := http.StatusBadRequest, "malformed HTTP request"
	if sc.lr.N <= 0 {
		status, msg = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request line and headers larger than %d bytes", maxHeaderBytes)
	}
	sc.writeWithin(time.Second)
	sc.rw.reset(nil)
	sc.rw.closeAfter = true
	writeError(&sc.rw, status, apitype.ClassInvalidRequest, msg)
	sc.finish()
}

// finish writes the answer the handler left in sc.rw, then zeroes it. It
// reports whether the write succeeded.
func (sc *serverConn) finish() bool {
	w := &sc.rw
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	b := sc.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	// Connection, Content-Length and Date are written from what is known
	// here, in their sorted place among the handler's headers, without
	// going through the header map.
	h := w.header
	conn := ""
	if w.closeAfter || h.Get("Connection") == "close" {
		w.closeAfter, conn = true, "close"
	}
	bodyAllowed := w.status >= 200 && w.status != http.StatusNoContent && w.status != http.StatusNotModified
	if bodyAllowed && len(w.body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	keys := append(sc.keys[:0], "Date")
	if conn != "" {
		keys = append(keys, "Connection")
	}
	if bodyAllowed {
		keys = append(keys, "Content-Length")
	}
	for k := range h {
		switch k {
		case "Date", "Content-Length":
			continue
		case "Connection":
			if conn != "" {
				continue
			}
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sc.keys = keys
	for _, k := range keys {
		switch {
		case k == "Date":
			b = append(b, "Date: "...)
			b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
			b = append(b, "\r\n"...)
		case k == "Content-Length":
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, int64(len(w.body)), 10)
			b = append(b, "\r\n"...)
		case k == "Connection" && conn != "":
			b = append(b, "Connection: "...)
			b = append(b, conn...)
			b = append(b, "\r\n"...)
		default:
			for _, v := range h[k] {
				b = append(b, k...)
				b = append(b, ": "...)
				b = append(b, v...)
				b = append(b, "\r\n"...)
			}
		}
	}
	b = append(b, "\r\n"...)
	if bodyAllowed && !w.head {
		b = append(b, w.body...)
	}
	_, err := sc.nc.Write(b)
	clear(b)
	clear(w.body)
	sc.out = b[:0]
	if cap(sc.out) > 64<<10 {
		sc.out = nil // a large status answer: not kept for the connection's life
	}
	if cap(w.body) > 64<<10 {
		w.body = nil
	}
	return err == nil
}

// respWriter is the http.ResponseWriter of a serverConn: it keeps the
// answer until the handler returns.
type respWriter struct {
	conn        *serverConn
	header      http.Header
	status      int
	wroteHeader bool
	head        bool // a HEAD request: no body is written
	closeAfter  bool
	body        []byte
	reqBody     *reqBody // the request's, for SetReadDeadline
}

func (w *respWriter) reset(req *http.Request) {
	clear(w.header)
	w.status, w.wroteHeader, w.closeAfter = 0, false, false
	w.head = req != nil && req.Method == http.MethodHead
	w.body = w.body[:0]
	w.reqBody = nil
}

func (w *respWriter) Header() http.Header { return w.header }

func (w *respWriter) WriteHeader(status int) {
	if w.wroteHeader || status < 100 || status > 999 {
		return
	}
	w.status, w.wroteHeader = status, true
}

// Write keeps p for the answer. The buffer that holds it is zeroed before
// it grows and once the answer is written.
func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if cap(w.body)-len(w.body) < len(p) {
		nb := make([]byte, len(w.body), 2*cap(w.body)+len(p))
		copy(nb, w.body)
		clear(w.body[:cap(w.body)])
		w.body = nb
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// SetReadDeadline is for http.ResponseController: the handler's deadline for
// the body. It is not set when the rest of the body is already in the
// connection's buffer (so no read of the socket is left for it to bound),
// and kept when the one in force is up to a tenth of the time sooner.
func (w *respWriter) SetReadDeadline(t time.Time) error {
	sc := w.conn
	if b := w.reqBody; b != nil && b.cont == nil && b.left >= 0 && b.left <= int64(sc.br.Buffered()) {
		return nil
	}
	if t.IsZero() {
		sc.rdl = t
		return sc.nc.SetReadDeadline(t)
	}
	sc.readWithin(time.Until(t))
	return nil
}

// SetWriteDeadline is for http.ResponseController.
func (w *respWriter) SetWriteDeadline(t time.Time) error {
	w.conn.wdl = t
	return w.conn.nc.SetWriteDeadline(t)
}

// reqBody is a request's body: it counts what is left to read, and sends
// "100 Continue" before the first read when the client asked for it.
type reqBody struct {
	r    io.ReadCloser
	left int64
	cont *serverConn // non-nil until "100 Continue" is sent
}

func (b *reqBody) Read(p []byte) (int, error) {
	if b.cont != nil {
		sc := b.cont
		b.cont = nil
		if _, err := io.WriteString(sc.nc, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return 0, err
		}
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if errors.Is(err, io.EOF) {
		b.left = 0
	}
	return n, err
}

func (b *reqBody) Close() error { return nil }
