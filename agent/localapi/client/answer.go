package client

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
)

// readAnswer reads an answer's status line and headers from br. When they
// are already whole in br's buffer and in the plain shape the agent writes,
// readAnswerFast builds the Response in one pass; anything else goes to
// http.ReadResponse, which is what the client used before and still reads
// everything this client may meet.
func readAnswer(br *bufio.Reader) (*http.Response, error) {
	if resp, ok := readAnswerFast(br); ok {
		return resp, nil
	}
	return http.ReadResponse(br, nil)
}

// readAnswerFast reads, without consuming anything unless it answers ok,
//
//	HTTP/1.1 200 OK\r\n
//	Content-Length: 57\r\n
//	Content-Type: application/json\r\n
//	Date: Mon, 30 Nov 2026 20:13:43 GMT\r\n
//	\r\n
//
// It answers ok only for a Response equal to the one http.ReadResponse
// makes of the same bytes, with the same bytes left for the body
// (FuzzReadAnswerMatchesReadResponse): HTTP/1.1; a status code from 200 to
// 599 but 204 and 304; lines ending in CRLF; header names already in
// canonical form; values of printable ASCII, spaces inside only; exactly
// one Content-Length of at most 18 digits without a leading zero; no
// Transfer-Encoding, Trailer or Pragma. The body is read through a reader
// that, like net/http's, fails with io.ErrUnexpectedEOF when the
// connection ends before Content-Length bytes.
//
// One string holds the status line and the headers, and the names and
// values are slices of it: a handful of allocations per answer, where
// http.ReadResponse makes one or more per header.
func readAnswerFast(br *bufio.Reader) (*http.Response, bool) {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, false
	}
	head := string(buf[:end+2]) // every line with its CRLF
	line, rest := cutLine(head)
	if len(line) < 12 || line[:9] != "HTTP/1.1 " || !answerStatus(line[9:12]) ||
		(len(line) > 12 && (line[12] != ' ' || !printable(line[13:], false))) {
		return nil, false
	}
	status := line[9:]
	code := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	n := bytes.Count(buf[:end+2], []byte("\r\n")) - 1 // header lines
	h := make(http.Header, n)
	vals := make([]string, n)
	length := int64(-1)
	closed := false
	for i := 0; rest != ""; i++ {
		line, rest = cutLine(rest)
		name, value, ok := cutHeader(line)
		if !ok {
			return nil, false
		}
		switch name {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil, false
		case "Content-Length":
			if length >= 0 {
				return nil, false
			}
			if length = contentLength(value); length < 0 {
				return nil, false
			}
		case "Connection":
			closed = closed || hasToken(value, "close")
		}
		vals[i] = value
		if vv := h[name]; vv != nil {
			h[name] = append(vv, value)
		} else {
			h[name] = vals[i : i+1 : i+1]
		}
	}
	if length < 0 {
		return nil, false
	}
	if closed {
		delete(h, "Connection") // as net/http does, once it has read it
	}
	br.Discard(end + 4)
	resp := &http.Response{
		Status: status, StatusCode: code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: length, Close: closed,
		Body: http.NoBody,
	}
	if length > 0 {
		resp.Body = newFixedBody(br, length)
	}
	return resp, true
}

// cutLine cuts s after its first CRLF; the line excludes it. A lone CR or
// LF stays in the line, where printable and cutHeader refuse it.
func cutLine(s string) (line, rest string) {
	line, rest, _ = strings.Cut(s, "\r\n")
	return line, rest
}

// answerStatus: three digits from 200 to 599, but 204 and 304, whose
// bodies net/http frames differently.
func answerStatus(s string) bool {
	if s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return false
	}
	return s != "204" && s != "304"
}

// cutHeader splits "Name: value": a canonical name of token characters
// (Content-Type, X-Request-Id), then spaces, then a value of printable
// ASCII with no space at either end.
func cutHeader(line string) (name, value string, ok bool) {
	colon := -1
	upper := true // the next letter starts a word: upper case
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == ':' {
			colon = i
			break
		}
		switch {
		case 'A' <= c && c <= 'Z':
			if !upper {
				return "", "", false
			}
		case 'a' <= c && c <= 'z':
			if upper {
				return "", "", false
			}
		case '0' <= c && c <= '9':
		case c == '-':
			upper = true
			continue
		case isTokenPunct(c):
		default:
			return "", "", false
		}
		upper = false
	}
	if colon <= 0 {
		return "", "", false
	}
	v := colon + 1
	for v < len(line) && line[v] == ' ' {
		v++
	}
	value = line[v:]
	if !printable(value, true) || (value != "" && value[len(value)-1] == ' ') {
		return "", "", false
	}
	return line[:colon], value, true
}

// isTokenPunct: the punctuation of an RFC 9110 token but '-', which
// cutHeader handles itself.
func isTokenPunct(c byte) bool {
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// printable: bytes from ' ' to '~'; empty is printable only if allowEmpty.
func printable(s string, allowEmpty bool) bool {
	if s == "" {
		return allowEmpty
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// contentLength parses 0 or [1-9][0-9]{0,17}; -1 for anything else.
func contentLength(s string) int64 {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return -1
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n
}

// hasToken reports whether the comma-separated list v holds tok (ASCII
// case-insensitive), spaces around items ignored.
func hasToken(v, tok string) bool {
	for v != "" {
		var item string
		item, v, _ = cutComma(v)
		if len(item) == len(tok) && asciiEqualFold(item, tok) {
			return true
		}
	}
	return false
}

func cutComma(v string) (item, rest string, found bool) {
	i := 0
	for i < len(v) && v[i] != ',' {
		i++
	}
	item = v[:i]
	if i < len(v) {
		rest, found = v[i+1:], true
	}
	for item != "" && (item[0] == ' ' || item[0] == '\t') {
		item = item[1:]
	}
	for item != "" && (item[len(item)-1] == ' ' || item[len(item)-1] == '\t') {
		item = item[:len(item)-1]
	}
	return item, rest, found
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// fixedBody reads a body of Content-Length bytes: a limitReader that ends
// with io.EOF, and fails with io.ErrUnexpectedEOF if the connection ends
// first, as net/http's body does.
type fixedBody struct{ limitReader }

func newFixedBody(r io.Reader, n int64) *fixedBody {
	return &fixedBody{limitReader{r: r, n: n, err: io.EOF}}
}

func (b *fixedBody) Read(p []byte) (int, error) {
	n, err := b.limitReader.Read(p)
	if err == io.EOF && b.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *fixedBody) Close() error { return nil }
