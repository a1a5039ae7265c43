package config

import (
	"strings"
	"testing"
)

func TestFeedConfig(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"off by default", "", ""},
		{"two urls", "feed:\n  urls: [https://feed1.example.com/credagent, https://feed2.example.com]\n  poll_interval: 10s\n  fail_closed_after: 72h\n", ""},
		{"http", "feed:\n  urls: [http://feed.example.com]\n", "feed.urls[0]"},
		{"query", "feed:\n  urls: [\"https://feed.example.com/?token=x\"]\n", "feed.urls[0]"},
		{"interval", "feed:\n  urls: [https://f.example.com]\n  poll_interval: 10ms\n", "feed.poll_interval"},
		{"cert without key", "feed:\n  urls: [https://f.example.com]\n  client_cert: /etc/c.pem\n", "go together"},
		{"header set by the agent", "feed:\n  urls: [https://f.example.com]\n  headers: {If-None-Match: x}\n", "set by the agent"},
		{"header line break", "feed:\n  urls: [https://f.example.com]\n  headers: {X-Token: \"a\\r\\nb\"}\n", "line break"},
		{"unknown key", "feed:\n  url: https://f.example.com\n", `unknown key "url" (in feed)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(Default(), []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.yaml == "" && (c.Feed.Enabled() || c.Feed.PollInterval != DefaultFeedPollInterval) {
					t.Fatalf("defaults %+v", c.Feed)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
