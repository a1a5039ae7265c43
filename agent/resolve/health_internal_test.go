package resolve

import (
	"reflect"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

func TestMergeServerStats(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	a := ccp.ServerStats{Server: "https://a", Successes: 3, Failures: 1, LastSuccess: t0, LastError: t0.Add(-time.Minute),
		LastErrorClass: apitype.ClassVaultUnreachable}
	b := ccp.ServerStats{Server: "https://b", Successes: 1}
	tests := []struct {
		name string
		x, y []ccp.ServerStats
		want []ccp.ServerStats
	}{
		{"nothing yet", nil, []ccp.ServerStats{a, b}, []ccp.ServerStats{a, b}},
		{"servers the first does not have are appended", []ccp.ServerStats{b}, []ccp.ServerStats{a},
			[]ccp.ServerStats{b, a}},
		{"the same server: counts add up, the latest times and error win, a fallback stays",
			[]ccp.ServerStats{a},
			[]ccp.ServerStats{{Server: "https://a", Successes: 2, Failures: 4, LastSuccess: t0.Add(-time.Hour),
				LastError: t0.Add(time.Minute), LastErrorClass: apitype.ClassServerError, LastErrorCode: "APPAP282E", TLS12Fallback: true}},
			[]ccp.ServerStats{{Server: "https://a", Successes: 5, Failures: 5, LastSuccess: t0,
				LastError: t0.Add(time.Minute), LastErrorClass: apitype.ClassServerError, LastErrorCode: "APPAP282E", TLS12Fallback: true}}},
		{"an older error does not replace a newer one",
			[]ccp.ServerStats{{Server: "https://a", Failures: 1, LastError: t0, LastErrorClass: apitype.ClassTimeout}},
			[]ccp.ServerStats{{Server: "https://a", Failures: 1, LastError: t0.Add(-time.Hour), LastErrorClass: apitype.ClassServerError}},
			[]ccp.ServerStats{{Server: "https://a", Failures: 2, LastError: t0, LastErrorClass: apitype.ClassTimeout}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeServerStats(append([]ccp.ServerStats(nil), tt.x...), tt.y)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
