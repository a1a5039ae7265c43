package localapi

import (
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
func (noResolver) Grants(*localsock.Identity, string) bool              { return false }

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
