package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
)

// readManifest reads and checks a feed manifest as an agent would.
func readManifest(t *testing.T, f *fixture, root string, a delivery.Address) *delivery.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(delivery.FeedDir(a)), delivery.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := (&delivery.ManifestChecker{Signers: f.pinned, Now: time.Now()}).Check(b, a, nil, nil)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m
}

func TestPublishSealsIntoFeed(t *testing.T) {
	f := newFixture(t)
	feed := filepath.Join(f.dir, "feed")
	me := delivery.Machine("machine-01")
	mustRun(t, nil, "store", "--to", f.reg, "--sign", f.signKey, "--feed", feed, "--name", "prod",
		"--server", "https://ccp.example.com", "--app-id", "app1", "--seq", "1")
	m1 := readManifest(t, f, feed, me)
	if len(m1.Deliveries) != 1 || m1.Deliveries[0].Kind != delivery.KindStore {
		t.Fatalf("manifest lists %+v", m1.Deliveries)
	}
	raw, err := os.ReadFile(filepath.Join(feed, filepath.FromSlash(delivery.FeedFile(me, m1.Deliveries[0].ID))))
	if err != nil {
		t.Fatal(err)
	}
	d, err := delivery.Parse(raw)
	if err != nil || !d.Sealed() {
		t.Fatalf("the store in the feed is not sealed (%v)", err)
	}
	if strings.Contains(string(raw), "ccp.example.com") {
		t.Fatal("the CCP address is readable in the feed")
	}
	// A credential in clear cannot reach a feed: --machine gives no key.
	if _, errOut, code := runCmd(nil, "credential", "--machine", "machine-01", "--sign", f.signKey, "--feed", feed,
		"--name", "c", "--store", "prod", "--object", "o"); code == 0 || !strings.Contains(errOut, "sealed") {
		t.Fatalf("credential in clear into a feed: exit %d, %s", code, errOut)
	}
	// A file written for an inbox, in clear, is refused by publish.
	out := filepath.Join(f.dir, "clear.delivery")
	mustRun(t, nil, "credential", "--machine", "machine-01", "--sign", f.signKey, "--out", out, "--name", "c", "--store", "prod", "--object", "o")
	if _, errOut, code := runCmd(nil, "publish", "--feed", feed, "--sign", f.signKey, out); code == 0 || !strings.Contains(errOut, "not sealed") {
		t.Fatalf("publish of a delivery in clear: exit %d, %s", code, errOut)
	}
	// A sealed one is taken, and the store is replaced by a newer one.
	sealed := filepath.Join(f.dir, "sealed.delivery")
	mustRun(t, nil, "credential", "--to", f.reg, "--seal", "--sign", f.signKey, "--out", sealed, "--name", "c", "--store", "prod", "--object", "o")
	mustRun(t, nil, "publish", "--feed", feed, "--sign", f.signKey, sealed)
	mustRun(t, nil, "store", "--to", f.reg, "--sign", f.signKey, "--feed", feed, "--name", "prod",
		"--server", "https://ccp2.example.com", "--app-id", "app1", "--seq", "2")
	m3 := readManifest(t, f, feed, me)
	if m3.Seq <= m1.Seq || len(m3.Deliveries) != 2 {
		t.Fatalf("manifest seq %d (first %d), lists %+v", m3.Seq, m1.Seq, m3.Deliveries)
	}
	// An older store is refused.
	if _, errOut, code := runCmd(nil, "store", "--to", f.reg, "--sign", f.signKey, "--feed", feed, "--name", "prod",
		"--server", "https://ccp.example.com", "--app-id", "app1", "--seq", "2"); code == 0 || !strings.Contains(errOut, "not newer") {
		t.Fatalf("older store: exit %d, %s", code, errOut)
	}
	// Refresh: a new sequence and the same deliveries.
	mustRun(t, nil, "publish", "--feed", feed, "--sign", f.signKey, "--refresh")
	m4 := readManifest(t, f, feed, me)
	if m4.Seq <= m3.Seq || len(m4.Deliveries) != 2 {
		t.Fatalf("after refresh: seq %d, %d deliveries", m4.Seq, len(m4.Deliveries))
	}
}
