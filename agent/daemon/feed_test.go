package daemon_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/secret"
)

// TestFeedEndToEnd runs the agent in-process with a feed on an HTTPS static
// server: the application, store and credential arrive through the feed
// (credagent sync), a resolution works, a reload polls the feed, and an
// expired manifest is reported and, with fail_closed_after, refuses
// resolutions until the portal refreshes the feed.
func TestFeedEndToEnd(t *testing.T) {
	root := t.TempDir()
	pki := devPKI(t, root)
	ccp := startCCP(t, pki, nil)

	tree := filepath.Join(root, "tree")
	web := httptest.NewTLSServer(http.FileServer(http.Dir(tree)))
	defer web.Close()
	dir := filepath.Join(root, "agent")
	os.MkdirAll(dir, 0o700)
	caFile := filepath.Join(root, "feed-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: web.Certificate().Raw}), 0o644)
	cfgYAML := fmt.Sprintf("feed:\n  urls: [%s/feed]\n  ca_file: %s\n  poll_interval: 1h\n  fail_closed_after: 1s\nmetrics:\n  interval: 1s\n", web.URL, caFile)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, dir)
	defer a.stop(t)

	signer, err := portal.LoadSigningKey(filepath.Join(dir, daemon.DevSigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	reg, pub, err := portal.LoadRegistration(filepath.Join(a.cfg.Paths.StateDir, "registration.json"))
	if err != nil {
		t.Fatal(err)
	}
	feed := &portal.Feed{Root: filepath.Join(tree, "feed"), Signer: signer, Validity: time.Hour}
	seq := uint64(0)
	publish := func(target string, c delivery.Content) {
		t.Helper()
		seq++
		d, err := delivery.Create(delivery.Header{ID: portal.NewID(), Target: target, Seq: seq, Created: time.Now(), To: delivery.Machine(reg.MachineID)}, c, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := feed.Publish([][]byte{d.Marshal()}); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(pki.AppP12File)
	pfx, err := portal.OpenPFX(raw, secret.FromString(fakeccp.DevP12Password), time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(pki.CAFile)
	publish("DemoApp", pfx.Application)
	publish("rpa-prod", &delivery.Store{Servers: []string{ccp.URL}, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: string(caPEM)})
	publish("sap-prod-admin", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"})

	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := a.client.Sync(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Feed) != 1 || st.Feed[0].Seq == 0 || st.Feed[0].LastError != "" || st.Feed[0].Deliveries != 3 {
		t.Fatalf("feed status after sync: %+v", st.Feed)
	}
	resolve := func() error {
		res, err := a.client.Resolve(ctx, "run-1", "flow-1", "sap-prod-admin")
		if err != nil {
			return err
		}
		defer res.Wipe()
		return res.Err()
	}
	if err := resolve(); err != nil {
		t.Fatalf("resolve through the feed's deliveries: %v", err)
	}

	// A reload (SIGHUP) polls the feed.
	publish("second", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"})
	a.doReload(t)
	a.waitEvent(t, delivery.KindCredential, "second")

	// An expired manifest: loud in status, and past fail_closed_after
	// resolutions fail with their own class.
	feed.Validity = 2 * time.Second
	publish("third", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"})
	if _, err := a.client.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := resolve()
		if apitype.ClassOf(err) == "feed_stale" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolution did not fail closed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	st, _ = a.client.Sync(sctx)
	if !st.Feed[0].Expired || !strings.Contains(strings.Join(st.Problems, "\n"), "FEED STALE") || st.Ready {
		t.Fatalf("expired feed not reported: %+v problems %q", st.Feed, st.Problems)
	}
	// The portal refreshes the feed: resolutions work again.
	feed.Validity = time.Hour
	if _, err := feed.Refresh(delivery.Machine(reg.MachineID)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.client.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	if err := resolve(); err != nil {
		t.Fatalf("after a refresh: %v", err)
	}

	// The metrics count the feed's deliveries as the feed's, and show its
	// manifest; nothing came through the inbox directory.
	prom := filepath.Join(dir, "credagent.prom")
	want := []string{
		`credagent_last_activity_timestamp_seconds{source="feed"} `,
		`credagent_deliveries_total{kind="credential",result="applied",reason="none"} 3`,
		`credagent_feed_addresses{state="fresh"} 1`,
		`credagent_feed_manifest_sequence{address="machine",group=""} `,
		`credagent_feed_manifest_expiry_timestamp_seconds{address="machine",group=""} `,
	}
	var text string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(prom)
		text = string(b)
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the textfile lacks %s after 10 s:\n%s", missing, text)
		}
	}
	if strings.Contains(text, `source="inbox"`) {
		t.Errorf("deliveries of the feed counted as the inbox's:\n%s", text)
	}
}
