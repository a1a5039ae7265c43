package client

import (
	"encoding/json"
	"testing"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// FuzzEncodeRequest: the request is written byte for byte as json.Marshal
// writes it.
func FuzzEncodeRequest(f *testing.F) {
	f.Add("r-1", "flow", "sap", "crm", true)
	f.Add("ü\u2028", `a"b\`, "<&>", "\x00\x7f\xff", true)
	f.Add("", "", "", "", false)
	f.Fuzz(func(t *testing.T, run, flow, n1, n2 string, some bool) {
		var names []string
		if some {
			names = []string{n1, n2}
		}
		want, err := json.Marshal(apitype.ResolveRequest{RunID: run, FlowID: flow, Names: names})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeRequest(run, flow, names); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}
