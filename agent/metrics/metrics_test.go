package metrics

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/state"
	"github.com/rs/zerolog"
)

// promtool finds Debian's promtool (scripts/prereqs.sh puts it in PATH).
// Without it the test is skipped, or fails under CI=true.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	// scripts/prereqs.sh installs it on Linux; the Windows build's tests
	// (under Wine or on a runner) check the same text in the Linux suite.
	if os.Getenv("CI") == "true" && runtime.GOOS != "windows" {
		t.Fatal("promtool is missing: run scripts/prereqs.sh as root")
	}
	t.Skip("promtool not installed (scripts/prereqs.sh installs it as root)")
	return ""
}

func filled(t testing.TB) *Registry {
	t.Helper()
	r := New("v1.2.3-test")
	r.SetKeyStore("tpm", true)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := state.Empty()
	s.Applications["DemoApp"] = &state.Application{AppID: "DemoApp", Certificate: &tls.Certificate{}, NotAfter: at.Add(90 * 24 * time.Hour)}
	s.Applications[state.Key("team \"a\"\n", "DemoApp")] = &state.Application{AppID: "DemoApp", Owner: "team \"a\"\n", NotAfter: at.Add(24 * time.Hour)}
	var st state.State
	st.Publish(s)
	r.SetState(st.Load)
	for i := range 50 {
		r.Resolution("resolve", "ok", "", time.Duration(i)*time.Millisecond)
	}
	r.Resolution("resolve", "error", "vault_unreachable", 3*time.Second)
	r.Resolution("check", "refused", "forbidden", time.Millisecond)
	r.Resolution("resolve", "error", "run-4711 secret=x", time.Millisecond) // not the agent's vocabulary
	// The same server three times, once spelled with a path: one series.
	r.CCPRequest("https://ccp1.example.com:8443", 200, 2*time.Millisecond)
	r.CCPRequest("https://ccp1.example.com:8443", 200, 2*time.Millisecond)
	r.CCPRequest("https://ccp1.example.com:8443/AIMWebService", 200, 2*time.Millisecond)
	r.CCPRequest("https://ccp1.example.com:8443/AIMWebService/api/Accounts?AppID=x&Object=secret", 500, time.Second)
	r.CCPRequest("https://ccp2.example.com", 0, 5*time.Second)
	r.Delivery("inbox", "application", true, "", at)
	r.Delivery("inbox", "", false, "malformed", at.Add(time.Minute))
	r.Delivery("feed", "store", false, "replay", at)
	r.now = func() time.Time { return at.Add(10 * time.Minute) }
	r.SetFeed(func() []FeedManifest {
		return []FeedManifest{
			{Machine: true, Seq: 1796040000000, Created: at, Expires: at.Add(7 * 24 * time.Hour)},
			{Group: "robots \"1\"", Seq: 7, Created: at.Add(-48 * time.Hour), Expires: at.Add(-time.Hour), Expired: true},
			{Group: "unconfigured-group", Seq: 3, Created: at, Expires: at.Add(time.Hour)},
			{Group: "robots-2"},
		}
	}, []string{"robots \"1\"", "robots-2"})
	return r
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	if err := filled(t).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`credagent_build_info{version="v1.2.3-test",goversion="go`,
		`credagent_keystore_info{backend="tpm",hardware="true"} 1`,
		"credagent_keystore_hardware 1\n",
		`credagent_resolutions_total{op="resolve",outcome="ok",class="none"} 50`,
		`credagent_resolutions_total{op="resolve",outcome="error",class="vault_unreachable"} 1`,
		`credagent_resolutions_total{op="resolve",outcome="error",class="other"} 1`,
		`credagent_resolve_duration_seconds_bucket{le="+Inf"} 53`,
		`credagent_resolve_duration_seconds_count 53`,
		`credagent_ccp_requests_total{server="https://ccp1.example.com:8443",status="500"} 1`,
		`credagent_ccp_requests_total{server="https://ccp1.example.com:8443",status="200"} 3`,
		`credagent_ccp_requests_total{server="https://ccp2.example.com",status="none"} 1`,
		`credagent_deliveries_total{kind="unknown",result="rejected",reason="malformed"} 1`,
		`credagent_deliveries_total{kind="application",result="applied",reason="none"} 1`,
		`credagent_last_activity_timestamp_seconds{source="inbox"} 1796040060`,
		`credagent_certificate_expiry_timestamp_seconds{app_id="DemoApp",owner=""} `,
		`credagent_feed_addresses{state="expired"} 1`,
		`credagent_feed_addresses{state="fresh"} 2`,
		`credagent_feed_addresses{state="none"} 1`,
		`credagent_feed_manifest_sequence{address="machine",group=""} 1796040000000`,
		`credagent_feed_manifest_sequence{address="group",group="robots \"1\""} 7`,
		`credagent_feed_manifest_age_seconds{address="machine",group=""} 600`,
		`credagent_feed_manifest_age_seconds{address="group",group="robots \"1\""} 173400`,
		`credagent_feed_manifest_expiry_timestamp_seconds{address="machine",group=""} 1796644800`,
		`credagent_feed_manifest_expiry_timestamp_seconds{address="group",group="robots \"1\""} 1796036400`,
		`credagent_certificate_expiry_timestamp_seconds{app_id="DemoApp",owner="team \"a\"\n"} `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	// A group not configured has no series of its own; one configured
	// without a manifest yet has none either.
	for _, never := range []string{"secret", "run-4711", "AIMWebService", "Object=", "unconfigured-group", `group="robots-2"`} {
		if strings.Contains(out, never) {
			t.Errorf("output holds %q:\n%s", never, out)
		}
	}
	// Every sample line is name{labels} value.
	sample := regexp.MustCompile(`^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? [-+0-9.e]+(Inf)?$`)
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		if !sample.MatchString(line) {
			t.Errorf("not a sample line: %q", line)
		}
	}
}

func TestPromtool(t *testing.T) {
	tool := promtool(t)
	for _, tt := range []struct {
		name string
		r    *Registry
	}{{"empty", New("dev")}, {"filled", filled(t)}} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.r.WriteText(&b)
			cmd := exec.Command(tool, "check", "metrics")
			cmd.Stdin = &b
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, b.String())
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credagent.prom")
	r := filled(t)
	for range 3 {
		if err := r.WriteFile(path); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Unix: readable by node_exporter's own user. Windows has no mode
	// bits; the file inherits the ACL of windows_exporter's textfile folder.
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 (node_exporter runs as its own user)", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	if err := r.WriteFile(filepath.Join(dir, "missing", "x.prom")); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestRunRefreshesAndServes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credagent.prom")
	r := New("dev")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, Options{Textfile: path, Interval: 20 * time.Millisecond, Listen: "127.0.0.1:0", Log: zerolog.Nop()})
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the textfile never showed %q", want)
	}
	waitFor("credagent_build_info")
	r.Resolution("resolve", "ok", "", time.Millisecond)
	waitFor(`class="none"} 1`)
	r.Resolution("resolve", "ok", "", time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `class="none"} 2`) {
		t.Error("the last values were not written at stop")
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		if ln, err := listenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("%s accepted", addr)
		}
	}
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: filled(t).Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") || !strings.Contains(string(body), "credagent_resolutions_total") {
		t.Fatalf("%d %s\n%s", resp.StatusCode, resp.Header, body)
	}
	if resp, err := http.Post("http://"+ln.Addr().String()+"/metrics", "text/plain", nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d", resp.StatusCode)
		}
	}
}

func TestNilRegistryRecordsNothing(t *testing.T) {
	var r *Registry
	r.Resolution("resolve", "ok", "", 0)
	r.CCPRequest("https://x", 200, 0)
	r.Delivery("inbox", "store", true, "", time.Now())
	r.SetKeyStore("file", false)
	r.SetState(nil)
}

func BenchmarkResolution(b *testing.B) {
	r := New("dev")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Resolution("resolve", "ok", "", time.Millisecond)
		}
	})
}

func BenchmarkWriteFile(b *testing.B) {
	r := filled(b)
	path := filepath.Join(b.TempDir(), "credagent.prom")
	for b.Loop() {
		if err := r.WriteFile(path); err != nil {
			b.Fatal(err)
		}
	}
}
