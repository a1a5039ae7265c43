package localapi_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/credagent/credagent/agent/localapi"
)

func FuzzDecodeResolveRequest(f *testing.F) {
	for _, s := range []string{
		`{"run_id":"r","flow_id":"f","names":["sap"]}`,
		`{"names":["a","b"]}`,
		`{"names":[]}`,
		`{"names":["a"],"x":1}`,
		`{"names":["a"]}{}`,
		`{"names":["a\u0000"]}`,
		`[1,2]`,
		`{"names":null}`,
		`{"names":["` + strings.Repeat("n", 300) + `"]}`,
		``,
		`{"names":["ü","€"],"run_id":"\ud800"}`,
		"{\"names\":[\"sap\"],\"run_id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := localapi.DecodeResolveRequest(bytes.NewReader(in), 8)
		if err != nil {
			return
		}
		if len(req.Names) == 0 || len(req.Names) > 8 {
			t.Fatalf("accepted %d names", len(req.Names))
		}
		// Nothing is accepted altered: JSON text is UTF-8.
		if !utf8.Valid(in) {
			t.Fatalf("accepted a request that is not UTF-8: %q", in)
		}
		seen := map[string]bool{}
		for _, n := range req.Names {
			if n == "" || len(n) > 256 || seen[n] {
				t.Fatalf("accepted name %q", n)
			}
			seen[n] = true
		}
		// What is accepted re-encodes and decodes to the same request.
		b, _ := json.Marshal(req)
		again, err := localapi.DecodeResolveRequest(bytes.NewReader(b), 8)
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip of %s: %+v, %v", b, again, err)
		}
	})
}
