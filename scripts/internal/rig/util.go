package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"time"
)

// TrimFloat prints x without trailing zeros.
func TrimFloat(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	s := fmt.Sprintf("%.3f", x)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// ReplaceBetween returns doc with the text between the begin and end
// markers replaced by body. The markers must each appear once, in order.
func ReplaceBetween(doc []byte, begin, end string, body []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(begin))
	j := bytes.Index(doc, []byte(end))
	if i < 0 || j < 0 || j < i || bytes.Count(doc, []byte(begin)) != 1 || bytes.Count(doc, []byte(end)) != 1 {
		return nil, fmt.Errorf("want exactly one %s followed by one %s", begin, end)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString("\n")
	out.Write(body)
	out.Write(doc[j:])
	return out.Bytes(), nil
}

// Between returns the text between the begin and end markers of doc, and
// whether both were found in order.
func Between(doc []byte, begin, end string) ([]byte, bool) {
	i := bytes.Index(doc, []byte(begin))
	if i < 0 {
		return nil, false
	}
	rest := doc[i+len(begin):]
	j := bytes.Index(rest, []byte(end))
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

// GetJSON decodes the answer to GET url, within 5 s.
func GetJSON(ctx context.Context, url string, v any) error {
	b, err := Call(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Call sends method to url with body as JSON (none when nil) and returns
// the answer's body, within 5 s. An answer other than 2xx is an error.
func Call(ctx context.Context, method, url string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s", method, url, res.Status)
	}
	return b, nil
}

// FreeLoopbackAddr is a 127.0.0.1 address with a port that was free a
// moment ago.
func FreeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
