package statusview

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

func TestHumanPendingRestart(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, ""},
		{[]string{"api.socket_group", "paths.socket"}, "restart:      needed for api.socket_group, paths.socket (changed in the config and reloaded)\n"},
	} {
		var b bytes.Buffer
		Report{Service: "running", Socket: "/s", Agent: &apitype.Status{PendingRestart: tc.keys}}.Human(&b, now)
		got := ""
		for _, l := range strings.SplitAfter(b.String(), "\n") {
			if strings.HasPrefix(l, "restart:") {
				got += l
			}
		}
		if got != tc.want {
			t.Errorf("keys %v: restart line %q, want %q", tc.keys, got, tc.want)
		}
	}
}
