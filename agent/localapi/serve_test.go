package localapi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/platform/localsock"
)

const resolveBody = `{"run_id":"r","names":["sap"]}`

func resolveReq(extra string) string {
	return "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nContent-Length: 30\r\n" + extra + "\r\n" + resolveBody
}

// http10Resolve is the head of an HTTP/1.0 resolve that asks to be kept
// alive, with extra headers.
func http10Resolve(extra string) string {
	return "POST /v1/resolve HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n" + extra + "\r\n"
}

// exchange sends what on a new connection and reads n answers, with their
// bodies. br holds what follows them.
func exchange(t *testing.T, path, what string, n int) (resps []*http.Response, bodies []string, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c, err := localsock.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// Written aside: the server may answer and close before it has read
	// everything (headers past the limit), which fails the write on a
	// named pipe.
	go io.WriteString(c, what)
	br = bufio.NewReader(c)
	for len(resps) < n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d to %q: %v", len(resps)+1, what, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	return resps, bodies, c, br
}

// answers is exchange, and closed reports whether the server closed the
// connection after the n answers.
func answers(t *testing.T, path, what string, n int) (resps []*http.Response, bodies []string, closed bool) {
	t.Helper()
	resps, bodies, c, br := exchange(t, path, what, n)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	// Closed: EOF, or a reset where the server closed with the client's
	// bytes unread. Not closed: the read timed out.
	_, err := br.ReadByte()
	var ne net.Error
	return resps, bodies, err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestHTTPConnection checks the connection's life as net/http's Server
// would serve it: pipelining, keep-alive and its end, 100-continue, and
// what is refused before any handler runs.
func TestHTTPConnection(t *testing.T) {
	h := start(t, setup{cfg: localapi.Config{Timeouts: localapi.Timeouts{IdleTimeout: time.Second}}})
	status := "GET /v1/status HTTP/1.1\r\nHost: credagent\r\n\r\n"
	tests := []struct {
		name   string
		send   string
		want   []int  // the statuses, in order
		closed bool   // the server closes the connection after them
		body   string // in the last answer's body
	}{
		{name: "two pipelined requests are answered in order", send: resolveReq("") + status, want: []int{200, 200}, body: `"ready":true`},
		{name: "Connection: close ends the connection", send: resolveReq("Connection: close\r\n") + status, want: []int{200}, closed: true},
		{name: "HTTP/1.0 without keep-alive ends it", send: "GET /v1/status HTTP/1.0\r\n\r\n", want: []int{200}, closed: true},
		// net/http would keep this one; this server closes every HTTP/1.0
		// connection, because http.ReadRequest drops an HTTP/1.0
		// request's Transfer-Encoding unseen (RFC 9112 6.1: close after).
		{name: "HTTP/1.0 with keep-alive ends it too", send: "GET /v1/status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + status, want: []int{200}, closed: true},
		{name: "HTTP/1.0 with Transfer-Encoding and Content-Length is framed by the length and ends the connection",
			send: http10Resolve("Content-Length: 30\r\nTransfer-Encoding: chunked\r\n") + resolveBody + status, want: []int{200}, closed: true},
		{name: "HTTP/1.0 with Transfer-Encoding alone: the chunks are never read as the next request",
			send: http10Resolve("Transfer-Encoding: chunked\r\n") + "5\r\n" + status, want: []int{400}, closed: true},
		{name: "HTTP/1.0: Expect: 100-continue is ignored", send: http10Resolve("Content-Length: 30\r\nExpect: 100-continue\r\n") + resolveBody,
			want: []int{200}, closed: true, body: `"sap"`},
		{name: "Expect: 100-continue is answered", send: resolveReq("Expect: 100-continue\r\n"), want: []int{100, 200}, body: `"sap"`},
		{name: "another Expect is refused", send: resolveReq("Expect: bogus\r\n"), want: []int{417}, closed: true, body: "Expect"},
		{name: "HTTP/2 is refused", send: "GET /v1/status HTTP/2.0\r\nHost: credagent\r\n\r\n", want: []int{505}, closed: true},
		{name: "a malformed request line is refused", send: "GET\r\n\r\n", want: []int{400}, closed: true, body: "malformed"},
		{name: "a malformed header is refused", send: "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nBad Name: x\r\n\r\n", want: []int{400}, closed: true},
		{name: "a control byte in a header value is refused", send: "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nX-A: a\x01b\r\n\r\n", want: []int{400}, closed: true},
		{name: "a malformed Host is refused", send: "GET /v1/status HTTP/1.1\r\nHost: a b\r\n\r\n", want: []int{400}, closed: true},
		{name: "two Host headers are refused", send: "GET /v1/status HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: []int{400}, closed: true},
		{name: "headers past the limit are refused", send: "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nX-Big: " + strings.Repeat("a", 24<<10) + "\r\n\r\n", want: []int{431}, closed: true},
		{name: "a body left unread ends the connection", send: "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nContent-Length: 5\r\n\r\nhello" + status, want: []int{200}, closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, bodies, closed := answers(t, h.path, tt.send, len(tt.want))
			for i, w := range tt.want {
				if resps[i].StatusCode != w {
					t.Fatalf("answer %d: status %d (%s), want %d", i+1, resps[i].StatusCode, bodies[i], w)
				}
			}
			if last := len(tt.want) - 1; !strings.Contains(bodies[last], tt.body) {
				t.Errorf("last body %q lacks %q", bodies[last], tt.body)
			}
			if closed != tt.closed {
				t.Errorf("connection closed after the answers: %v, want %v", closed, tt.closed)
			}
			last := resps[len(resps)-1]
			if tt.closed && !last.Close {
				t.Errorf("the last answer did not say Connection: close: %v", last.Header)
			}
			if last.Header.Get("Date") == "" || last.Header.Get("Cache-Control") == "" && last.StatusCode == 200 {
				t.Errorf("answer headers %v", last.Header)
			}
		})
	}
}

// TestHTTPIdleTimeout: an idle kept-alive connection is closed after the
// idle timeout, and one that never sends a request after the read timeout.
func TestHTTPIdleTimeout(t *testing.T) {
	h := start(t, setup{cfg: localapi.Config{Timeouts: localapi.Timeouts{IdleTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond}}})
	for _, tc := range []struct {
		name string
		send string
	}{
		{"after a request", "GET /v1/status HTTP/1.1\r\nHost: credagent\r\n\r\n"},
		{"before any request", ""},
		{"in the middle of the headers", "GET /v1/status HTTP/1.1\r\nHost: cre"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := localsock.Dial(context.Background(), h.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.send)
			begin := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if took := time.Since(begin); took > 3*time.Second {
				t.Fatalf("closed after %v", took)
			}
			if tc.send == "" && len(b) != 0 || strings.HasSuffix(tc.send, "cre") && len(b) != 0 {
				t.Fatalf("answered a request never made: %q", b)
			}
		})
	}
}

// TestHTTPHead: a HEAD answer has the headers of the GET, and no body.
func TestHTTPHead(t *testing.T) {
	h := start(t, setup{})
	c, err := localsock.Dial(context.Background(), h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "HEAD /v1/status HTTP/1.1\r\nHost: credagent\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "Content-Length: ") || body != "" {
		t.Fatalf("answer %q", b)
	}
}

// TestCallerGoneLogged: a caller that hangs up while its resolution is at
// CCP does not cancel it; the resolution is audited, and the answer that
// could not be handed over is logged, without the password.
func TestCallerGoneLogged(t *testing.T) {
	g := &gatedCCP{Fetcher: newFakeCCP(), gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	h := start(t, setup{fetcher: g})
	c, err := localsock.Dial(context.Background(), h.path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, resolveReq(""))
	<-g.entered
	c.Close()
	close(g.gate)
	for end := time.Now().Add(5 * time.Second); !strings.Contains(h.log.String(), "the answer could not be written"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no log line for the answer not handed over; log: %s", h.log.String())
		}
	}
	if recs := h.auditRecords(t); len(recs) != 1 || recs[0]["outcome"] != "ok" {
		t.Fatalf("audit %v, want the one resolution", recs)
	}
}
