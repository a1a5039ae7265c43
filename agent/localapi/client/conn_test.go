package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/paths"
)

// rawServer is a fake agent on a Unix socket that answers with whatever
// bytes its handler writes, so that the tests can answer as no well-behaved
// server would.
type rawServer struct {
	path  string
	ln    net.Listener
	conns atomic.Int64 // connections accepted
	reqs  atomic.Int64 // requests read
	// handle answers the reqOnConn-th request (from 1) of a connection; it
	// returns false to close the connection.
	handle func(c net.Conn, r *http.Request, body []byte, reqOnConn int) bool
	// atAccept, if set, runs first on each connection; false closes it.
	atAccept func(c net.Conn) bool

	wg   sync.WaitGroup
	done chan struct{}
}

func newRawServer(t *testing.T, handle func(c net.Conn, r *http.Request, body []byte, reqOnConn int) bool) *rawServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "clconn")
	if err != nil {
		t.Fatal(err)
	}
	// The agent's dev socket or pipe name for dir: a Unix socket, or on
	// Windows a named pipe (what the client dials there).
	s := &rawServer{path: paths.Dev(dir).Socket, handle: handle, done: make(chan struct{})}
	s.ln, err = localsock.Listen(s.path, localsock.ListenOptions{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(s.done)
		s.ln.Close()
		s.wg.Wait()
		os.RemoveAll(dir)
	})
	return s
}

func (s *rawServer) start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
}

func (s *rawServer) serve(c net.Conn) {
	defer c.Close()
	go func() { <-s.done; c.Close() }()
	if s.atAccept != nil && !s.atAccept(c) {
		return
	}
	br := bufio.NewReader(c)
	for n := 1; ; n++ {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		s.reqs.Add(1)
		if !s.handle(c, r, body, n) {
			return
		}
	}
}

func answer(c net.Conn, status int, body string, extra ...string) {
	h := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", status, http.StatusText(status), len(body))
	for _, e := range extra {
		h += e + "\r\n"
	}
	io.WriteString(c, h+"\r\n"+body)
}

const statusBody = `{"version":"test"}` + "\n"

func okStatus(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
	answer(c, 200, statusBody)
	return true
}

// TestExchange drives the transport through a fake agent's good and bad
// answers: the outcome of each call in turn, and how many connections the
// client dialed for them.
func TestExchange(t *testing.T) {
	big := strings.Repeat("x", maxResponseBytes+1)
	tests := []struct {
		name   string
		handle func(c net.Conn, r *http.Request, body []byte, n int) bool
		// atAccept, if set, runs on each new connection first.
		atAccept func(c net.Conn) bool
		// pause between calls, so that the fake can act on an idle
		// connection.
		pause time.Duration
		// want is one entry per call: "" for success, else a substring of
		// the error.
		want  []string
		conns int64
		reqs  int64
		// idle is the number of idle connections after the calls.
		idle int
	}{
		{name: "keep-alive: one connection for all", handle: okStatus,
			want: []string{"", "", ""}, conns: 1, reqs: 3, idle: 1},
		{name: "Connection: close: a connection per call",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				answer(c, 200, statusBody, "Connection: close")
				return false
			},
			want: []string{"", "", ""}, conns: 3, reqs: 3, idle: 0},
		{name: "HTTP/1.0 without keep-alive: not reused",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(statusBody), statusBody)
				return true
			},
			want: []string{"", ""}, conns: 2, reqs: 2, idle: 0},
		{name: "the agent closes an idle connection: sent again on a fresh one",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				answer(c, 200, statusBody)
				return false // as an idle timeout would, after answering
			},
			pause: 20 * time.Millisecond,
			// The last one is pooled: its answer said keep-alive.
			want: []string{"", "", ""}, conns: 3, reqs: 3, idle: 1},
		{name: "a reused connection closed after reading the request: sent again once",
			handle: func(c net.Conn, _ *http.Request, _ []byte, n int) bool {
				if n == 2 {
					return false // read, then gone without a byte
				}
				answer(c, 200, statusBody)
				return true
			},
			want: []string{"", ""}, conns: 2, reqs: 3, idle: 1},
		{name: "a fresh connection closed without an answer: not sent again",
			handle: func(net.Conn, *http.Request, []byte, int) bool { return false },
			want:   []string{"EOF"}, conns: 1, reqs: 1, idle: 0},
		{name: "truncated body: an error, not sent again, connection dropped",
			handle: func(c net.Conn, _ *http.Request, _ []byte, n int) bool {
				if n == 2 {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"version\"")
					return false
				}
				answer(c, 200, statusBody)
				return true
			},
			want: []string{"", "reading the answer: unexpected EOF", ""}, conns: 2, reqs: 3, idle: 1},
		{name: "truncated headers: an error, not sent again",
			handle: func(c net.Conn, _ *http.Request, _ []byte, n int) bool {
				if n == 2 {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
					return false
				}
				answer(c, 200, statusBody)
				return true
			},
			want: []string{"", "malformed MIME header", ""}, conns: 2, reqs: 3, idle: 1},
		{name: "oversized body (Content-Length)",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				answer(c, 200, big)
				return true
			},
			want: []string{"answer too large", "answer too large"}, conns: 2, reqs: 2, idle: 0},
		{name: "oversized body (chunked)",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				chunk := fmt.Sprintf("%x\r\n%s\r\n", 1<<20, strings.Repeat("y", 1<<20))
				for range 17 {
					if _, err := io.WriteString(c, chunk); err != nil {
						return false
					}
				}
				io.WriteString(c, "0\r\n\r\n")
				return true
			},
			want: []string{"answer too large"}, conns: 1, reqs: 1, idle: 0},
		{name: "chunked answer within bounds: kept alive",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"v\r\n10\r\nersion\":\"test\"}\n\r\n0\r\n\r\n")
				return true
			},
			want: []string{"", ""}, conns: 1, reqs: 2, idle: 1},
		{name: "oversized headers",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Pad: "+strings.Repeat("p", maxResponseHeaderBytes)+"\r\nContent-Length: 2\r\n\r\n{}")
				return false
			},
			want: []string{"headers exceed"}, conns: 1, reqs: 1, idle: 0},
		{name: "an answer with bytes after it: answered, not reused",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				one := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(statusBody), statusBody)
				io.WriteString(c, one+one) // in one write, so they arrive together
				return true
			},
			want: []string{"", ""}, conns: 2, reqs: 2, idle: 0},
		{name: "informational answer: an error",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\n\r\n")
				return false
			},
			want: []string{"informational"}, conns: 1, reqs: 1, idle: 0},
		{name: "error answer: decoded, connection kept",
			handle: func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
				answer(c, 429, `{"error":{"class":"rate_limited","message":"slow down"}}`, "Retry-After: 3")
				return true
			},
			want: []string{"rate_limited", "rate_limited"}, conns: 1, reqs: 2, idle: 1},
		{name: "refused at accept (503, before the request is read)",
			atAccept: func(c net.Conn) bool {
				answer(c, 503, `{"error":{"class":"overloaded","message":"too many connections"}}`+"\n", "Connection: close", "Retry-After: 1")
				return false
			},
			handle: okStatus,
			want:   []string{"overloaded"}, conns: 1, reqs: 0, idle: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRawServer(t, tt.handle)
			s.atAccept = tt.atAccept
			s.start()
			c := New(s.path)
			defer c.Close()
			for i, want := range tt.want {
				if i > 0 && tt.pause > 0 {
					time.Sleep(tt.pause)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				st, err := c.Status(ctx)
				cancel()
				switch {
				case want == "" && err != nil:
					t.Fatalf("call %d: %v", i+1, err)
				case want == "" && st.Version != "test":
					t.Fatalf("call %d: status %+v", i+1, st)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Fatalf("call %d: error %v, want one with %q", i+1, err, want)
				}
			}
			if got := s.conns.Load(); got != tt.conns {
				t.Errorf("connections dialed: %d, want %d", got, tt.conns)
			}
			if got := s.reqs.Load(); got != tt.reqs {
				t.Errorf("requests read: %d, want %d", got, tt.reqs)
			}
			if got := c.pool.idleCount(); got != tt.idle {
				t.Errorf("idle connections: %d, want %d", got, tt.idle)
			}
		})
	}
}

// TestErrorAnswer checks what a refusal carries through to the caller.
func TestErrorAnswer(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, _ *http.Request, _ []byte, _ int) bool {
		answer(c, 429, `{"error":{"class":"rate_limited","code":"x","message":"slow down","correlation_id":"c1","rule":"r"}}`, "Retry-After: 3")
		return true
	})
	s.start()
	c := New(s.path)
	defer c.Close()
	_, err := c.Resolve(context.Background(), "run", "flow", "a")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	want := Error{HTTPStatus: 429, Class: apitype.ClassRateLimited, Code: "x", Message: "slow down", CorrelationID: "c1", Rule: "r", RetryAfter: 3 * time.Second}
	if *e != want {
		t.Errorf("error %+v, want %+v", *e, want)
	}
	if !apitype.IsRateLimited(err) {
		t.Error("IsRateLimited is false")
	}
}

// TestRequestShape checks the bytes the agent receives: what its guard
// accepts (a path, Content-Length, no Transfer-Encoding) and what its
// handlers read.
func TestRequestShape(t *testing.T) {
	type seen struct {
		method, uri, host, ctype string
		length                   int64
		te                       []string
		body                     string
	}
	got := make(chan seen, 4)
	s := newRawServer(t, func(c net.Conn, r *http.Request, body []byte, _ int) bool {
		got <- seen{r.Method, r.RequestURI, r.Host, r.Header.Get("Content-Type"), r.ContentLength, r.TransferEncoding, string(body)}
		switch r.URL.Path {
		case "/v1/resolve":
			answer(c, 200, `{"results":{"a":{"username":"u","password":"p"}}}`)
		default:
			answer(c, 200, statusBody)
		}
		return true
	})
	s.start()
	c := New(s.path)
	defer c.Close()
	ctx := context.Background()
	res, err := c.Resolve(ctx, "run1", "flow1", "a")
	if err != nil {
		t.Fatal(err)
	}
	if cr := res.Get("a"); cr == nil || cr.Username != "u" || string(cr.Password.Reveal()) != "p" {
		t.Errorf("resolution %+v", res.Credentials)
	}
	res.Wipe()
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	wantBody := `{"run_id":"run1","flow_id":"flow1","names":["a"]}`
	tests := []seen{
		{"POST", "/v1/resolve", "credagent", "application/json", int64(len(wantBody)), nil, wantBody},
		{"GET", "/v1/status", "credagent", "", 0, nil, ""},
		{"POST", "/v1/sync", "credagent", "application/json", 2, nil, "{}"},
	}
	for i, want := range tests {
		g := <-got
		if g.method != want.method || g.uri != want.uri || g.host != want.host || g.ctype != want.ctype ||
			g.length != want.length || len(g.te) != 0 || g.body != want.body {
			t.Errorf("request %d: %+v, want %+v", i+1, g, want)
		}
	}
}

// TestCancel: a cancelled or expired context unblocks a call waiting for
// its answer, the error says why, and the connection is not reused.
func TestCancel(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel mid-read", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline mid-read", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancelled before", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			s := newRawServer(t, func(c net.Conn, _ *http.Request, _ []byte, n int) bool {
				if n == 2 {
					<-release // never answers in time
					return false
				}
				answer(c, 200, statusBody)
				return true
			})
			s.start()
			c := New(s.path)
			defer c.Close()
			if _, err := c.Status(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.Status(ctx)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v to give up", d)
			}
			want := 0
			if tt.name == "cancelled before" {
				want = 1 // nothing was sent: the connection stays
			}
			if got := c.pool.idleCount(); got != want {
				t.Errorf("idle connections: %d, want %d", got, want)
			}
		})
	}
}

// TestDeadlineCleared: a deadline set for one call does not outlive it on a
// pooled connection.
func TestDeadlineCleared(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, _ *http.Request, _ []byte, n int) bool {
		if n == 2 {
			time.Sleep(150 * time.Millisecond)
		}
		answer(c, 200, statusBody)
		return true
	})
	s.start()
	c := New(s.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := c.Status(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond) // past the first call's deadline
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("second call, no deadline: %v", err)
	}
	if got := s.conns.Load(); got != 1 {
		t.Errorf("connections: %d, want 1", got)
	}
}

// TestConcurrent: 64 goroutines share one client.
func TestConcurrent(t *testing.T) {
	s := newRawServer(t, func(c net.Conn, r *http.Request, body []byte, _ int) bool {
		// Echo the run ID back, so that a mixed-up answer shows.
		run := string(body[bytes.Index(body, []byte(`"run_id":"`))+10:])
		run = run[:strings.IndexByte(run, '"')]
		answer(c, 200, `{"results":{"a":{"username":"`+run+`","password":"p"}}}`)
		return true
	})
	s.start()
	c := New(s.path)
	defer c.Close()
	const callers, each = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				run := fmt.Sprintf("r%d-%d", g, i)
				res, err := c.Resolve(context.Background(), run, "f", "a")
				if err != nil {
					errs <- err
					return
				}
				if u := res.Credentials[0].Username; u != run {
					errs <- fmt.Errorf("asked %s, answered %s", run, u)
					return
				}
				res.Wipe()
				if i == each/2 && g%16 == 0 {
					c.Close()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.reqs.Load(); got != callers*each {
		t.Errorf("requests: %d, want %d", got, callers*each)
	}
	if got := s.conns.Load(); got > callers*5 {
		t.Errorf("connections: %d for %d callers", got, callers)
	}
	if got := c.pool.idleCount(); got > maxIdleConns {
		t.Errorf("idle connections: %d, more than %d", got, maxIdleConns)
	}
}

// TestIdleCap: no more than maxIdleConns are kept, and idle ones past
// idleTimeout are closed rather than used.
func TestIdleCap(t *testing.T) {
	s := newRawServer(t, okStatus)
	s.start()
	c := New(s.path)
	defer c.Close()
	var held []*conn
	for range maxIdleConns + 3 {
		nc, err := c.pool.dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, newConn(nc))
	}
	for _, h := range held {
		c.pool.put(h)
	}
	if got := c.pool.idleCount(); got != maxIdleConns {
		t.Fatalf("idle: %d, want %d", got, maxIdleConns)
	}
	// Age all but the newest: get closes them and returns the newest.
	c.pool.mu.Lock()
	for _, h := range c.pool.idle[:maxIdleConns-1] {
		h.idleAt = h.idleAt.Add(-idleTimeout)
	}
	newest := c.pool.idle[maxIdleConns-1]
	c.pool.mu.Unlock()
	if got := c.pool.get(); got != newest {
		t.Fatal("get did not return the most recently used connection")
	}
	if got := c.pool.idleCount(); got != 0 {
		t.Errorf("idle after get: %d, want 0", got)
	}
	c.pool.put(newest)
	c.Close()
	if got := c.pool.idleCount(); got != 0 {
		t.Errorf("idle after Close: %d", got)
	}
	// Still usable after Close.
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// FuzzExchange feeds arbitrary answers to one exchange: no panic, and a
// connection is kept only after a complete, well-framed answer.
func FuzzExchange(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.0 500 x\r\n\r\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, answerBytes []byte) {
		cl, sv := net.Pipe()
		defer cl.Close()
		go func() {
			defer sv.Close()
			buf := make([]byte, 4096)
			sv.Read(buf) // the request
			sv.SetWriteDeadline(time.Now().Add(2 * time.Second))
			sv.Write(answerBytes)
		}()
		c := newConn(cl)
		cl.SetDeadline(time.Now().Add(5 * time.Second))
		resp, body, keep, _, err := c.exchange(buildRequest("GET", "/v1/status", nil))
		if err != nil && keep {
			t.Fatal("kept a connection after an error")
		}
		if err == nil {
			if resp == nil {
				t.Fatal("no error and no answer")
			}
			if resp.ContentLength >= 0 && int64(len(body)) > resp.ContentLength {
				t.Fatalf("body of %d bytes for Content-Length %d", len(body), resp.ContentLength)
			}
			if keep && resp.Close {
				t.Fatal("kept a connection the answer closes")
			}
		}
	})
}
