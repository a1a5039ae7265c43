package doctor

import (
	"strings"
	"testing"
	"time"
)

func TestCheckFeed(t *testing.T) {
	exp := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		in    []FeedAddress
		level Level
		says  string
	}{
		{"none followed", nil, Warn, "no feed address"},
		{"never fetched", []FeedAddress{{Address: "machine m1", LastError: "network: refused"}}, Fail, "no manifest accepted"},
		{"expired", []FeedAddress{{Address: "machine m1", Seq: 4, Expires: exp, Expired: true}}, Fail, "FEED STALE"},
		{"last poll failed", []FeedAddress{{Address: "group g", Seq: 4, Expires: exp, LastError: "rollback: ..."}}, Warn, "rollback"},
		{"fresh", []FeedAddress{{Address: "machine m1", Seq: 4, Expires: exp}}, Pass, "seq 4"},
	}
	for _, tt := range tests {
		rs := CheckFeed(tt.in)
		if Worst(rs) != tt.level || !strings.Contains(rs[0].Detail, tt.says) {
			t.Errorf("%s: %+v, want %s saying %q", tt.name, rs, tt.level, tt.says)
		}
	}
}
