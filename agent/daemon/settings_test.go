package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/config"
)

// changedConfig returns base with every key of the config file changed to
// another valid value. TestChangedConfigChangesEveryKey fails when a key
// is added to config.Config and not here, so the reload tests cover it.
func changedConfig(t *testing.T, base config.Config, dir string) config.Config {
	t.Helper()
	c := base
	abs := func(name string) string { return filepath.Join(dir, "changed", name) }
	c.MachineID = base.MachineID + "-changed"
	c.Paths.StateDir, c.Paths.InboxDir = abs("state"), abs("inbox")
	c.Paths.Socket = abs("agent.sock")
	if runtime.GOOS == "windows" {
		c.Paths.Socket = `\\.\pipe\credagent-changed`
	}
	c.Log.Level = map[bool]string{true: "warn", false: "debug"}[base.Log.Level == "debug"]
	c.Log.Format = map[bool]string{true: "json", false: "console"}[base.Log.Format == "console"]
	c.Log.File, c.Log.AuditFile = abs("agent.log"), abs("audit.log")
	c.Log.MaxSizeMB, c.Log.MaxFiles = base.Log.MaxSizeMB+1, base.Log.MaxFiles+1
	c.KeyStore.Backend = map[bool]string{true: "auto", false: "file"}[base.KeyStore.Backend == "file"]
	c.KeyStore.KeyName = base.KeyStore.KeyName + "-changed"
	c.KeyStore.Dir = abs("keys")
	c.KeyStore.TPMDevice = "tcp://127.0.0.1:2321"
	c.Portal.SigningKeys = append(slices.Clone(base.Portal.SigningKeys), newSigningKeyPEM(t))
	c.Inbox.RescanInterval = base.Inbox.RescanInterval + time.Second
	c.Inbox.MaxDeliveryBytes = base.Inbox.MaxDeliveryBytes + 1024
	c.Inbox.ExpiryWarning = base.Inbox.ExpiryWarning + time.Hour
	c.Inbox.AllowedOwners = append(slices.Clone(base.Inbox.AllowedOwners), "4242")
	c.Inbox.Groups = append(slices.Clone(base.Inbox.Groups), "changed-group")
	c.API.SocketGroup = base.API.SocketGroup + "-changed"
	c.API.PipeAllow = append(slices.Clone(base.API.PipeAllow), "S-1-5-21-1-2-3-1001")
	c.API.MaxRequestBytes = base.API.MaxRequestBytes + 1
	c.API.MaxCredentials = base.API.MaxCredentials + 1
	c.API.MaxConcurrent = base.API.MaxConcurrent + 1
	c.API.ReadTimeout = base.API.ReadTimeout + time.Second
	c.API.WriteTimeout = base.API.WriteTimeout + time.Second
	c.API.IdleTimeout = base.API.IdleTimeout + time.Second
	c.API.ShutdownGrace = base.API.ShutdownGrace + time.Second
	c.API.RatePerSecond = 0.001 // one token per 1000 s: a second name is refused, with a long wait
	c.API.RateBurst = 1
	c.API.MaxConnections = base.API.MaxConnections + 1
	c.API.MaxConnectionsPerCaller = base.API.MaxConnectionsPerCaller + 1
	c.API.MaxConcurrentPerCaller = base.API.MaxConcurrentPerCaller + 1
	c.API.BodyTimeout = base.API.BodyTimeout + time.Second
	rules := slices.Clone(base.Policy.Rules)
	if len(rules) == 0 {
		t.Fatal("the base config needs a policy rule to change")
	}
	rules[0].Name += "-changed"
	rules[0].Credentials = []string{"changed-*"}
	c.Policy.Rules = rules
	c.CCP = config.CCP{
		ConnectTimeout: base.CCP.ConnectTimeout + time.Second, TLSTimeout: base.CCP.TLSTimeout + time.Second,
		RequestTimeout: base.CCP.RequestTimeout + time.Second, Retries: base.CCP.Retries + 1,
		RetryBackoff: base.CCP.RetryBackoff + time.Millisecond, PasswordChangeWait: base.CCP.PasswordChangeWait + time.Second,
		PoolSize: base.CCP.PoolSize + 1, HTTP2: !base.CCP.HTTP2,
		TLSMaxVersion: map[bool]string{true: "1.3", false: "1.2"}[base.CCP.TLSMaxVersion == "1.2"],
	}
	c.Feed = config.Feed{
		URLs:         append(slices.Clone(base.Feed.URLs), "https://feed-changed.example.com/credagent"),
		PollInterval: base.Feed.PollInterval + time.Minute, Timeout: base.Feed.Timeout + time.Second,
		CAFile: abs("feed-ca.pem"), Proxy: "http://proxy-changed.example.com:3128", NoProxy: []string{".changed.example.com"},
		Headers: map[string]string{"X-Changed": "1"}, ClientCert: abs("feed.crt"), ClientKey: abs("feed.key"),
		MaxManifestBytes: base.Feed.MaxManifestBytes - 1, FailClosedAfter: base.Feed.FailClosedAfter + time.Hour,
	}
	c.Metrics.Textfile = abs("credagent.prom")
	c.Metrics.Listen = "127.0.0.1:19464"
	c.Metrics.Interval = base.Metrics.Interval + time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("the changed config is not valid: %v", err)
	}
	return c
}

func newSigningKeyPEM(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// baseConfig is a dev config with a feed, so that every part a reload
// reaches is running.
func baseConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	c, err := DevConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Feed.URLs = []string{"https://127.0.0.1:1/credagent"} // nothing listens: polls fail, the feed runs
	c.Log.Format = "json"                                   // the tests read the log lines
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func keyNames(keys []configKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.name)
	}
	return out
}

// TestChangedConfigChangesEveryKey: every key of config.Config differs in
// changedConfig, so a test that reloads it covers every key.
func TestChangedConfigChangesEveryKey(t *testing.T) {
	dir := t.TempDir()
	base := baseConfig(t, dir)
	next := changedConfig(t, base, dir)
	vb, vn := reflect.ValueOf(base), reflect.ValueOf(next)
	for _, k := range configKeys() {
		if reflect.DeepEqual(vb.FieldByIndex(k.index).Interface(), vn.FieldByIndex(k.index).Interface()) {
			t.Errorf("changedConfig leaves %s as it is: change it there", k.name)
		}
	}
	if n := len(configKeys()); n < 50 {
		t.Errorf("configKeys found %d keys; the walk of config.Config misses some", n)
	}
}

// TestEveryKeyIsClassified: each key of the config file reaches a part of
// the agent, as a live setting or a restart one; none is dropped by
// translate.
func TestEveryKeyIsClassified(t *testing.T) {
	dir := t.TempDir()
	base := baseConfig(t, dir)
	live, restart, unused := reloadClasses(base, changedConfig(t, base, dir))
	if len(unused) > 0 {
		t.Errorf("keys that reach no part of the agent (translate drops them): %v", unused)
	}
	all := append(slices.Clone(live), restart...)
	slices.Sort(all)
	want := keyNames(configKeys())
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("classified %v\nwant every key %v", all, want)
	}
	// What the README promises: these are applied by a reload.
	for _, k := range []string{"log.level", "policy.rules", "api.rate_per_second", "api.max_concurrent", "api.body_timeout", "ccp.request_timeout", "feed.poll_interval"} {
		if !slices.Contains(live, k) {
			t.Errorf("%s is not applied by a reload", k)
		}
	}
	for _, k := range []string{"paths.socket", "api.socket_group", "keystore.backend", "inbox.groups", "log.file", "metrics.listen", "feed.urls"} {
		if !slices.Contains(restart, k) {
			t.Errorf("%s is not reported as needing a restart", k)
		}
	}
}

// TestDefaultsAgree: the config's defaults are the parts' own, which the
// parts use for a zero option.
func TestDefaultsAgree(t *testing.T) {
	d := translate(config.Default())
	if got, want := d.live.API, localapi.DefaultLimits; got != want {
		t.Errorf("api limits: config default %+v, localapi's %+v", got, want)
	}
	if got, want := d.restart.APITimeouts, localapi.DefaultTimeouts; got != want {
		t.Errorf("api timeouts: config default %+v, localapi's %+v", got, want)
	}
	c := d.live.CCP
	if c.ConnectTimeout != ccp.DefaultConnectTimeout || c.TLSTimeout != ccp.DefaultTLSTimeout || c.RequestTimeout != ccp.DefaultRequestTimeout ||
		c.Retries != ccp.DefaultRetries || c.RetryBackoff != ccp.DefaultRetryBackoff || c.PasswordChangeWait != ccp.DefaultPasswordChangeWait ||
		c.PoolSize != ccp.DefaultPoolSize {
		t.Errorf("ccp: config defaults %+v differ from agent/ccp's", c)
	}
}

func TestCCPOptions(t *testing.T) {
	st := &state.Store{Servers: []string{"https://a", "https://b"}, Path: "/X", CABundle: []byte("pem"),
		Pins: []string{"p"}, Proxy: "http://proxy:3128", NoProxy: []string{".corp"}}
	cfg := config.Default()
	cfg.CCP = config.CCP{ConnectTimeout: time.Second, TLSTimeout: 2 * time.Second, RequestTimeout: 3 * time.Second,
		Retries: 4, RetryBackoff: time.Millisecond, PasswordChangeWait: time.Minute, PoolSize: 7, HTTP2: true}
	o := ccpOptions(st, translate(cfg).live.CCP)
	if !slices.Equal(o.Servers, st.Servers) || o.Path != "/X" || string(o.CABundle) != "pem" || o.Pins[0] != "p" ||
		o.Proxy != st.Proxy || o.NoProxy[0] != ".corp" || o.ConnectTimeout != time.Second || o.TLSTimeout != 2*time.Second ||
		o.RequestTimeout != 3*time.Second || o.Retries != 4 || o.RetryBackoff != time.Millisecond ||
		o.PasswordChangeWait != time.Minute || o.PoolSize != 7 || !o.HTTP2 {
		t.Errorf("ccpOptions = %+v", o)
	}
	st.Servers[0] = "changed"
	if o.Servers[0] != "https://a" {
		t.Error("Options share the store's slice")
	}
	// tls_max_version: the config's, unless the store sets its own.
	cfg.CCP.TLSMaxVersion = "1.3"
	if o := ccpOptions(st, translate(cfg).live.CCP); o.TLSMaxVersion != tls.VersionTLS13 {
		t.Errorf("config tls_max_version: %x", o.TLSMaxVersion)
	}
	st.TLSMaxVersion = "1.2"
	if o := ccpOptions(st, translate(cfg).live.CCP); o.TLSMaxVersion != tls.VersionTLS12 {
		t.Errorf("store tls_max_version: %x", o.TLSMaxVersion)
	}
}

// TestReadmeReload: the README's reload paragraph names the keys a reload
// applies and those that wait for a restart, as reloadClasses finds them.
func TestReadmeReload(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Skipf("no README here: %v", err)
	}
	const begin, end = "<!-- reload-keys: generated from agent/daemon's settings; TestReadmeReload checks it -->\n", "  <!-- /reload-keys -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q block", begin, end)
	}
	dir := t.TempDir()
	base := baseConfig(t, dir)
	live, restart, _ := reloadClasses(base, changedConfig(t, base, dir))
	want := reloadParagraph(live, restart)
	if got := s[i+len(begin) : j]; got != want {
		t.Errorf("the README's reload keys are out of date; replace the block with:\n%s%s%s", begin, want, end)
	}
}

// reloadParagraph is the README's list of keys by what a reload does.
func reloadParagraph(live, restart []string) string {
	quote := func(keys []string) string {
		q := make([]string, len(keys))
		for i, k := range keys {
			q[i] = "`" + k + "`"
		}
		return strings.Join(q, ", ")
	}
	return "  Applied at once: " + quote(live) + ".\n  Taken only at the next restart (a reload names them in its log line and\n  `credagent status` lists them under `restart:`): " + quote(restart) + ".\n"
}
