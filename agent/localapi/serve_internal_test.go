package localapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"github.com/rs/zerolog"
)

// noResolver refuses everything; the tests here replace the handler.
type noResolver struct{}

func (noResolver) Resolve(context.Context, *localsock.Identity, resolve.Request) resolve.Result {
	return resolve.Result{}
}
func (noResolver) Admit(*localsock.Identity, resolve.Op) *resolve.Error { return nil }
func (noResolver) Grants(*localsock.Identity, string, string) bool      { return false }

// TestHandlerPanic: a handler that panics is logged, its connection is
// closed without an answer, and the server goes on serving.
func TestHandlerPanic(t *testing.T) {
	var log agenttest.LockedBuffer
	s := NewServer(Options{Resolver: noResolver{}, Log: zerolog.New(&log)})
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		io.WriteString(w, "fine")
	})
	path := localsocktest.DevPath(t)
	ln, err := localsock.Listen(path, localsock.ListenOptions{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	send := func(target string) string {
		c, err := localsock.Dial(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := send("/panic"); got != "" {
		t.Fatalf("a panicking handler's connection answered %q", got)
	}
	if got := send("/ok"); !strings.HasSuffix(got, "\r\n\r\nfine") {
		t.Fatalf("after the panic: %q", got)
	}
	if !strings.Contains(log.String(), "a handler panicked") || !strings.Contains(log.String(), "boom") {
		t.Fatalf("log %q", log.String())
	}
}

// TestAnswerBuffersZeroed: once an answer is written, neither the
// connection's answer buffer nor the body kept for it holds its bytes.
func TestAnswerBuffersZeroed(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	s := NewServer(Options{Resolver: noResolver{}, Log: zerolog.Nop()})
	sc := newServerConn(s, a)
	sc.rw.reset(nil)
	io.WriteString(&sc.rw, "password-in-the-answer")
	go io.Copy(io.Discard, b)
	if !sc.finish() {
		t.Fatal("write failed")
	}
	for what, buf := range map[string][]byte{"answer": sc.out[:cap(sc.out)], "body": sc.rw.body[:cap(sc.rw.body)]} {
		if bytes.Contains(buf, []byte("password")) || len(bytes.Trim(buf, "\x00")) != 0 {
			t.Errorf("the %s buffer still holds %q", what, bytes.Trim(buf, "\x00"))
		}
	}
}

// deadlineConn counts the deadlines set on it.
type deadlineConn struct {
	net.Conn
	reads, writes int
	rdl           time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error  { c.reads++; c.rdl = t; return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.writes++; return nil }

// TestDeadlineKept: a deadline in force is kept when it is at most a tenth
// of the timeout sooner than asked, and moved when it is later or sooner
// than that; so a timeout never fires later than configured.
func TestDeadlineKept(t *testing.T) {
	const d = 10 * time.Second
	for _, tc := range []struct {
		name  string
		inAge time.Duration // the deadline in force is now+d-inAge
		unset bool
		moved bool
	}{
		{name: "none in force", unset: true, moved: true},
		{name: "just set", inAge: 0, moved: false},
		{name: "set a little earlier", inAge: 500 * time.Millisecond, moved: false},
		{name: "set more than a tenth earlier", inAge: 1500 * time.Millisecond, moved: true},
		{name: "later than asked", inAge: -5 * time.Second, moved: true},
		{name: "long past", inAge: time.Hour, moved: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &deadlineConn{}
			sc := &serverConn{nc: c}
			if !tc.unset {
				sc.rdl = time.Now().Add(d - tc.inAge)
				sc.wdl = sc.rdl
			}
			before := time.Now()
			sc.readWithin(d)
			sc.writeWithin(d)
			if got := c.reads == 1 && c.writes == 1; got != tc.moved {
				t.Fatalf("moved %v (reads %d, writes %d); want %v", got, c.reads, c.writes, tc.moved)
			}
			if left := sc.rdl.Sub(before); left > d+time.Second || left < d-d/10-time.Second {
				t.Fatalf("the read deadline in force is %v from now; want %v, at most a tenth less", left, d)
			}
			if tc.moved && !c.rdl.Equal(sc.rdl) {
				t.Fatalf("the deadline on the connection %v, recorded %v", c.rdl, sc.rdl)
			}
		})
	}
}

// TestBodyDeadlineOnlyWhenRead: the handler's body deadline is set only
// when the rest of the body is not already in the connection's buffer.
func TestBodyDeadlineOnlyWhenRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		buffered string
		left     int64
		cont     bool
		set      bool
	}{
		{name: "whole body buffered", buffered: `{"names":["a"]}`, left: 15, set: false},
		{name: "no body", left: 0, set: false},
		{name: "part of the body", buffered: `{"na`, left: 15, set: true},
		{name: "chunked", buffered: "5\r\nhello\r\n0\r\n\r\n", left: -1, set: true},
		{name: "waits for 100-continue", left: 15, cont: true, set: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &deadlineConn{}
			sc := &serverConn{nc: c, br: bufio.NewReader(strings.NewReader(tc.buffered))}
			sc.br.Peek(len(tc.buffered))
			sc.rw.conn = sc
			sc.rw.reqBody = &reqBody{left: tc.left}
			if tc.cont {
				sc.rw.reqBody.cont = sc
			}
			http.NewResponseController(&sc.rw).SetReadDeadline(time.Now().Add(time.Second))
			if got := c.reads == 1; got != tc.set {
				t.Fatalf("deadline set %v; want %v", got, tc.set)
			}
		})
	}
}
