package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func pemPub(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestDefaultsValidate(t *testing.T) {
	for name, c := range map[string]Config{"default": Default(), "dev": DevDefault(t.TempDir())} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s config does not validate: %v", name, err)
		}
	}
}

func TestParse(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	indent := func(s string) string { return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") }

	tests := []struct {
		name     string
		doc      string
		wantErr  []string // substrings that must all appear
		check    func(t *testing.T, c Config)
		unixOnly bool
	}{
		{name: "empty keeps defaults", doc: "", check: func(t *testing.T, c Config) {
			if c.API.MaxCredentials != 32 || c.CCP.Retries != 2 {
				t.Errorf("defaults lost: %+v", c.API)
			}
		}},
		{name: "durations and lists", doc: "inbox:\n  rescan_interval: 5s\npolicy:\n  rules:\n    - name: runner\n      uids: [1001]\n      credentials: [\"*\"]\n",
			check: func(t *testing.T, c Config) {
				if c.Inbox.RescanInterval != 5*time.Second || len(c.Policy.Rules) != 1 || c.Policy.Rules[0].UIDs[0] != 1001 {
					t.Errorf("got %+v %+v", c.Inbox, c.Policy)
				}
			}},
		{name: "signing keys", doc: "portal:\n  signing_keys:\n  - |\n" + indent(pemPub(t, edPub)) + "\n  - |\n" + indent(pemPub(t, &ecKey.PublicKey)) + "\n",
			check: func(t *testing.T, c Config) {
				if len(c.Portal.SigningKeys) != 2 {
					t.Errorf("got %d keys", len(c.Portal.SigningKeys))
				}
			}},
		{name: "unknown top-level key names key and line", doc: "log:\n  level: info\nlogg: x\n", wantErr: []string{"line 3", `unknown key "logg"`, "top level"}},
		{name: "unknown nested key", doc: "api:\n  max_concurent: 3\n", wantErr: []string{"line 2", `"max_concurent"`, "(in api)"}},
		{name: "unknown rule key", doc: "policy:\n  rules:\n    - name: a\n      uid: [1]\n", wantErr: []string{"line 4", `"uid"`, "policy.rules[]"}},
		{name: "wrong type", doc: "api:\n  max_credentials: lots\n", wantErr: []string{"line 2"}},
		{name: "bad duration", doc: "ccp:\n  connect_timeout: soon\n", wantErr: []string{"line 2"}},
		{name: "syntax error", doc: "api: [\n", wantErr: []string{"invalid YAML"}},
		{name: "two documents", doc: "log:\n  level: info\n---\nlog:\n  level: debug\n", wantErr: []string{"more than one YAML document"}},
		{name: "bad level", doc: "log:\n  level: loud\n", wantErr: []string{"log.level", "loud"}},
		{name: "several errors at once", doc: "log:\n  format: xml\nccp:\n  retries: 99\n", wantErr: []string{"log.format", "ccp.retries"}},
		{name: "relative path", doc: "paths:\n  state_dir: var/lib\n", wantErr: []string{"paths.state_dir", "absolute"}},
		{name: "rule without identity", doc: "policy:\n  rules:\n    - name: all\n      credentials: [\"*\"]\n", wantErr: []string{"matches every caller"}},
		{name: "socket in /run", doc: "paths:\n  socket: /run/agent.sock\n", wantErr: []string{"paths.socket", "shared"}, unixOnly: true},
		{name: "socket in the state dir", doc: "paths:\n  state_dir: /srv/ca\n  socket: /srv/ca/agent.sock\n", wantErr: []string{"paths.socket", "private"}, unixOnly: true},
		{name: "executables-only rule", doc: "policy:\n  rules:\n    - {name: a, executables: [/opt/rpa/runner], credentials: [x]}\n", wantErr: []string{"policy.rules[0]", "only executables"}},
		{name: "wildcard user", doc: "policy:\n  rules:\n    - {name: a, users: [\"*\"], credentials: [x]}\n", wantErr: []string{"policy.rules[0].users", "wildcards"}},
		{name: "wildcard group", doc: "policy:\n  rules:\n    - {name: a, groups: [\"rpa-*\"], credentials: [x]}\n", wantErr: []string{"policy.rules[0].groups", "wildcards"}},
		{name: "rule without name", doc: "policy:\n  rules:\n    - uids: [1]\n      credentials: [\"*\"]\n", wantErr: []string{"needs a name"}},
		{name: "duplicate rule", doc: "policy:\n  rules:\n    - {name: a, uids: [1], credentials: [x]}\n    - {name: a, uids: [2], credentials: [x]}\n", wantErr: []string{"duplicate rule name"}},
		{name: "bad sid", doc: "policy:\n  rules:\n    - {name: a, sids: [bob], credentials: [x]}\n", wantErr: []string{"not a SID"}},
		{name: "owners", doc: "policy:\n  rules:\n    - {name: a, uids: [1], credentials: ['*'], owners: [team-a, 'Team B']}\n",
			check: func(t *testing.T, c Config) {
				if got := c.Policy.Rules[0].Owners; len(got) != 2 || got[1] != "Team B" {
					t.Errorf("owners %q", got)
				}
			}},
		{name: "owner with a trailing space", doc: "policy:\n  rules:\n    - {name: a, uids: [1], credentials: [x], owners: ['team-a ']}\n", wantErr: []string{"policy.rules[0].owners", "not an owner name"}},
		{name: "owner twice", doc: "policy:\n  rules:\n    - {name: a, uids: [1], credentials: [x], owners: [t, t]}\n", wantErr: []string{"listed twice"}},
		{name: "metrics", doc: "metrics:\n  textfile: /var/lib/node_exporter/credagent.prom\n  listen: 127.0.0.1:9464\n  interval: 15s\n",
			check: func(t *testing.T, c Config) {
				if c.Metrics.Listen != "127.0.0.1:9464" || c.Metrics.Interval != 15*time.Second {
					t.Errorf("metrics %+v", c.Metrics)
				}
			}},
		{name: "metrics on the network refused", doc: "metrics:\n  listen: 0.0.0.0:9464\n", wantErr: []string{"metrics.listen", "not a loopback"}},
		{name: "metrics without a port refused", doc: "metrics:\n  listen: 127.0.0.1\n", wantErr: []string{"metrics.listen"}},
		{name: "metrics interval too long", doc: "metrics:\n  interval: 1m\n", wantErr: []string{"metrics.interval"}},
		{name: "bad op", doc: "policy:\n  rules:\n    - {name: a, uids: [1], credentials: [x], operations: [delete]}\n", wantErr: []string{"operations"}},
		{name: "garbage signing key", doc: "portal:\n  signing_keys: [nope]\n", wantErr: []string{"portal.signing_keys[0]", "PUBLIC KEY"}},
		{name: "P-384 signing key", doc: "portal:\n  signing_keys:\n  - |\n" + indent(pemPub(t, &p384.PublicKey)) + "\n", wantErr: []string{"P-256"}},
		{name: "bad backend", doc: "keystore:\n  backend: hsm\n", wantErr: []string{"keystore.backend"}},
		{name: "key name with path", doc: "keystore:\n  key_name: ../x\n", wantErr: []string{"keystore.key_name"}},
		// One rule with the key store (keystore.CheckKeyName): what it
		// refuses at create time, config refuses at load.
		{name: "inbox groups", doc: "inbox:\n  groups: [robots, \"night shift\"]\n", check: func(t *testing.T, c Config) {
			if len(c.Inbox.Groups) != 2 || c.Inbox.Groups[1] != "night shift" {
				t.Errorf("inbox.groups = %q", c.Inbox.Groups)
			}
		}},
		{name: "bad inbox group", doc: "inbox:\n  groups: [\" robots\"]\n", wantErr: []string{"inbox.groups[0]"}},
		{name: "key name with a space", doc: "keystore:\n  key_name: machine key\n", wantErr: []string{"keystore.key_name"}},
		{name: "hidden key name", doc: "keystore:\n  key_name: .hidden\n", wantErr: []string{"keystore.key_name"}},
		{name: "key name with dot dot", doc: "keystore:\n  key_name: a..b\n", wantErr: []string{"keystore.key_name"}},
		{name: "key name whose pending name is too long", doc: "keystore:\n  key_name: " + strings.Repeat("k", 62) + "\n", wantErr: []string{"keystore.key_name", "rotation"}},
		{name: "tls max version", doc: "ccp:\n  tls_max_version: \"1.2\"\n", check: func(t *testing.T, c Config) {
			if c.CCP.TLSMaxVersion != "1.2" {
				t.Errorf("tls_max_version %q", c.CCP.TLSMaxVersion)
			}
		}},
		{name: "bad tls max version", doc: "ccp:\n  tls_max_version: \"1.1\"\n", wantErr: []string{"ccp.tls_max_version"}},
		// Keys match exactly, once each (yaml.v3 with KnownFields): no
		// case variant, no duplicate, and so no reader-dependent value.
		{name: "case-variant key", doc: "ccp:\n  Retries: 3\n", wantErr: []string{`"Retries"`}},
		{name: "duplicate key", doc: "ccp:\n  retries: 3\n  retries: 4\n", wantErr: []string{"retries"}},
		{name: "case-variant duplicate", doc: "ccp:\n  retries: 3\n  RETRIES: 4\n", wantErr: []string{`"RETRIES"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unixOnly && runtime.GOOS == "windows" {
				t.Skip("a named pipe has no directory")
			}
			c, err := Parse(Default(), []byte(tt.doc))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got none", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("error should name file and line: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("want error for missing file")
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileBytes+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("want size error, got %v", err)
	}
}

// FuzzParse: whatever the bytes, Parse returns a config or an error; it never
// panics, and a config it accepts always validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("log:\n  level: debug\n"))
	f.Add([]byte("policy:\n  rules:\n    - {name: a, uids: [1], credentials: ['*']}\n"))
	f.Add([]byte("api: [\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("inbox:\n  rescan_interval: -5s\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(Default(), b)
		if err != nil {
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", verr)
		}
	})
}
