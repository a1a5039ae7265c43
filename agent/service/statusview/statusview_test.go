package statusview

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

func TestHuman(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := Report{Service: "running", Socket: "/run/credagent/agent.sock", Agent: &apitype.Status{
		Version:  "1.0.0",
		KeyStore: apitype.KeyStoreStatus{Backend: "tpm", HardwareBacked: true},
		Applications: []apitype.ApplicationStatus{
			{AppID: "RPA-B", NotAfter: now.AddDate(0, 0, 40)},
			{AppID: "RPA-A", NotAfter: now.Add(-time.Hour)},
		},
		Stores:      []apitype.StoreStatus{{Name: "prod", LastSuccess: now.Add(-90 * time.Second)}, {Name: "dr"}},
		Credentials: []apitype.CredentialStatus{{Name: "sap", Store: "prod"}, {Name: "crm", Store: "prod"}},
		Rejected:    []apitype.RejectedDelivery{{File: "x.cad", Reason: "bad signature", At: now}},
	}}
	var b bytes.Buffer
	r.Human(&b, now)
	want := `service:      running
socket:       /run/credagent/agent.sock
agent:        1.0.0
key:          tpm (hardware)
applications: 2
  RPA-A                    EXPIRED 2026-03-01
  RPA-B                    expires 2026-04-10 (40 days)
stores:       2
  dr                       no contact yet
  prod                     last contact 1m ago
credentials:  2 (crm, sap)
rejected:     1
  2026-03-01T12:00:00Z x.cad: bad signature
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	Report{Service: "stopped", Socket: "/s", AgentError: "connection refused"}.Human(&b, now)
	if b.String() != "service:      stopped\nsocket:       /s\nagent:        connection refused\n" {
		t.Fatalf("got %q", b.String())
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := (Report{Service: "not-installed", Socket: "/s"}).JSON(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["service"] != "not-installed" || m["agent"] != nil {
		t.Fatalf("%s %v", b.String(), err)
	}
}

func TestHumanKeyLine(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		key  apitype.KeyStoreStatus
		want string
	}{
		{apitype.KeyStoreStatus{Backend: "tpm", HardwareBacked: true}, "key:          tpm (hardware)\n"},
		{apitype.KeyStoreStatus{Backend: "file"}, "key:          file (software: not hardware-backed)\n"},
		{apitype.KeyStoreStatus{Backend: "cng-software", Detail: "Microsoft Software Key Storage Provider; the TPM's provider could not make the key"},
			"key:          cng-software (software: not hardware-backed; Microsoft Software Key Storage Provider; the TPM's provider could not make the key)\n"},
		{apitype.KeyStoreStatus{Backend: "file", NeedsReenroll: "TPM cleared"}, "key:          file (software: not hardware-backed); NEEDS RE-ENROLMENT: TPM cleared\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		Report{Service: "running", Socket: "/s", Agent: &apitype.Status{KeyStore: tt.key}}.Human(&b, now)
		if !bytes.Contains(b.Bytes(), []byte(tt.want)) {
			t.Errorf("want %q in:\n%s", tt.want, b.String())
		}
	}
}

func TestHumanLimited(t *testing.T) {
	r := Report{Service: "running", Socket: "/run/credagent/agent.sock", Agent: &apitype.Status{
		Version: "1.0.0", Ready: true, Limited: true,
		Credentials: []apitype.CredentialStatus{{Name: "sap"}},
	}}
	var b bytes.Buffer
	r.Human(&b, time.Now())
	want := `service:      running
socket:       /run/credagent/agent.sock
agent:        1.0.0
state:        ready
view:         limited to the credentials your policy rule grants; run as root (an administrator on Windows) for the whole status
credentials:  1 (sap)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestHumanFeed(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := Report{Service: "running", Socket: "/s", Agent: &apitype.Status{
		Feed: []apitype.FeedStatus{
			{Address: "machine m1", Seq: 7, Deliveries: 3, AgeSeconds: 120, Expires: now.Add(time.Hour), LastPoll: now.Add(-10 * time.Second)},
			{Address: "group g", Seq: 2, Deliveries: 1, AgeSeconds: 90000, Expired: true, Expires: now.Add(-time.Hour), LastError: "network: connection refused"},
		},
		Problems: []string{"FEED STALE: the newest valid manifest for group g ..."},
	}}
	var b bytes.Buffer
	r.Human(&b, now)
	for _, want := range []string{
		"feed:         2 address(es)\n",
		"  machine m1               seq 7, 3 deliveries, made 2m ago, valid until 2026-03-01T13:00:00Z; polled 10s ago\n",
		"  group g                  seq 2, 1 deliveries, made 25h ago, EXPIRED 2026-03-01T11:00:00Z: this machine may be missing changes and revocations; last error: network: connection refused\n",
		"PROBLEM:      FEED STALE",
	} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}

func TestHumanServers(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		sv   apitype.ServerStatus
		want string
	}{
		{"no errors", apitype.ServerStatus{Server: "https://ccp1:443", Successes: 12, LastSuccess: now},
			"    https://ccp1:443 12 ok, 0 errors\n"},
		{"errors, with the last one's class and code",
			apitype.ServerStatus{Server: "https://ccp2:443", Successes: 1, Errors: 3, LastErrorAt: now.Add(-5 * time.Minute),
				LastErrorClass: "vault_unreachable", LastErrorCode: "APPAP282E"},
			"    https://ccp2:443 1 ok, 3 errors (last 5m ago: vault_unreachable APPAP282E)\n"},
		{"a TLS 1.2 fallback says what to fix",
			apitype.ServerStatus{Server: "https://iis:443", Successes: 4, TLS12Fallback: true},
			"    https://iis:443 4 ok, 0 errors; TLS 1.2: the server asks for the client certificate after the TLS 1.3 handshake (IIS: netsh http update sslcert ... clientcertnegotiation=enable)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Service: "running", Socket: "/s", Agent: &apitype.Status{
				Stores: []apitype.StoreStatus{{Name: "prod", LastSuccess: now, ServerHealth: []apitype.ServerStatus{tt.sv}}},
			}}
			var b bytes.Buffer
			r.Human(&b, now)
			want := "  prod                     last contact 0s ago\n" + tt.want
			if !bytes.Contains(b.Bytes(), []byte(want)) {
				t.Errorf("want %q in:\n%s", want, b.String())
			}
		})
	}
}
