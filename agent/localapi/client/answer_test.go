package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// headSeeds are answers the agent writes, and near misses of the shape
// readAnswerFast reads.
var headSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\nDate: Mon, 30 Nov 2026 20:13:43 GMT\r\n\r\n{}",
	"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\nRetry-After: 3\r\nConnection: close\r\n\r\n{}",
	"HTTP/1.1 503 Service Unavailable\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",
	"HTTP/1.1 200\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length:2\r\nX-B:  v  w\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\tb\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n folded\r\n\r\n{}",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
	"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nPragma: no-cache\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n",
}

// TestReadAnswerFast: the agent's answers take the fast path; the shapes
// it does not read go to http.ReadResponse.
func TestReadAnswerFast(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool
	}{
		{headSeeds[0], true},
		{headSeeds[1], true},
		{headSeeds[2], true},
		{headSeeds[4], true},
		{headSeeds[5], false},                               // not canonical
		{headSeeds[6], false},                               // leading zero
		{headSeeds[7], false},                               // repeated Content-Length
		{headSeeds[8], false},                               // chunked
		{headSeeds[10], false},                              // tab
		{headSeeds[11], false},                              // folded
		{headSeeds[12], false},                              // bare LF
		{headSeeds[13], false},                              // 204
		{headSeeds[14], false},                              // HTTP/1.0
		{headSeeds[15], false},                              // Pragma
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false}, // headers not whole
	} {
		br := bufio.NewReader(strings.NewReader(tc.in))
		br.Peek(1)
		if _, ok := readAnswerFast(br); ok != tc.fast {
			t.Errorf("%q: fast %v, want %v", tc.in, ok, tc.fast)
		}
	}
	resp, ok := readAnswerFast(bufReader(headSeeds[1]))
	if !ok || resp.StatusCode != 429 || resp.Status != "429 Too Many Requests" || !resp.Close || resp.Header.Get("Retry-After") != "3" || resp.ContentLength != 2 {
		t.Fatalf("%+v", resp)
	}
}

// TestReadAnswerFastShortBody: a body cut short fails as net/http's does.
func TestReadAnswerFastShortBody(t *testing.T) {
	resp, ok := readAnswerFast(bufReader(headSeeds[3]))
	if !ok {
		t.Fatal("not read")
	}
	if b, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want io.ErrUnexpectedEOF", b, err)
	}
}

func bufReader(s string) *bufio.Reader {
	br := bufio.NewReader(strings.NewReader(s))
	br.Peek(1)
	return br
}

// FuzzReadAnswerMatchesReadResponse: whatever readAnswerFast reads,
// http.ReadResponse reads to an equal Response, with the same body and the
// same bytes left after it.
func FuzzReadAnswerMatchesReadResponse(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fast := bufio.NewReader(bytes.NewReader(in))
		fast.Peek(1)
		got, ok := readAnswerFast(fast)
		if !ok {
			if fast.Buffered() != min(len(in), 4096) {
				t.Fatal("a refused answer consumed bytes")
			}
			return
		}
		slow := bufio.NewReader(bytes.NewReader(in))
		want, err := http.ReadResponse(slow, nil)
		if err != nil {
			t.Fatalf("fast read %q, http.ReadResponse refused it: %v", in, err)
		}
		gotBody, gotErr := io.ReadAll(got.Body)
		wantBody, wantErr := io.ReadAll(want.Body)
		if !bytes.Equal(gotBody, wantBody) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: body %q (%v), want %q (%v)", in, gotBody, gotErr, wantBody, wantErr)
		}
		got.Body, want.Body = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", in, got, want)
		}
		gotRest, _ := io.ReadAll(fast)
		wantRest, _ := io.ReadAll(slow)
		if !bytes.Equal(gotRest, wantRest) {
			t.Fatalf("%q: left %q, want %q", in, gotRest, wantRest)
		}
	})
}
