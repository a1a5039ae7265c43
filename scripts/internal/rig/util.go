package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}
