//go:build linux

package faultmatrix

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp/apachefront"
)

// fault is one row of the matrix: what goes wrong, what the agent must do,
// and the test that makes it happen and asserts it.
type fault struct {
	name     string // subtest name
	fault    string
	expected string
	run      func(t *testing.T)
}

// bound is the longest a failing resolution may take with the test config:
// every attempt times out, plus backoff and slack for a loaded machine.
const bound = (tRetries+1)*tRequest + tRetries*4*tBackoff + 1500*time.Millisecond

var matrix = []fault{
	{"ccp-down", "CCP down (connection refused)",
		"resolution fails with class `vault_unreachable` within the retry budget; status shows the store's last error",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision("https://" + deadAddr(t))
			w.expectClass("sap", "vault_unreachable", "", bound)
			st := w.status()
			if len(st.Stores) != 1 || st.Stores[0].LastErrorClass != "vault_unreachable" {
				t.Fatalf("status stores %+v, want last error vault_unreachable", st.Stores)
			}
		}},
	{"ccp-one-of-two-down", "one of two CCP servers down",
		"fails over to the other server: served, no error returned",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision("https://"+deadAddr(t), w.ccp.URL)
			for range 3 {
				w.expectServed("sap", "Sap-Pr0d!pass")
			}
		}},
	{"ccp-slow", "CCP slow (answers after 3 s, request timeout 600 ms)",
		"class `timeout` after at most (retries+1) x request timeout + backoff",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.ccp.SetFaults(fakeccp.Faults{Latency: 3 * time.Second})
			o := w.expectClass("sap", "timeout", "", bound)
			if o.took < tRequest {
				t.Fatalf("timed out after %v, before the request timeout", o.took)
			}
		}},
	{"ccp-5xx", "CCP answers 503",
		"class `server_error`, retried (retries+1 requests reach CCP), then reported",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.ccp.SetFaults(fakeccp.Faults{Status: 503})
			w.expectClassRequests("sap", "server_error", "", tRetries+1)
		}},
	{"ccp-vault-down", "CCP up, Vault unreachable (APPAP007E)",
		"class `vault_unreachable`, code APPAP007E, retried then reported",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.ccp.SetFaults(fakeccp.Faults{VaultDown: true})
			w.expectClassRequests("sap", "vault_unreachable", "APPAP007E", tRetries+1)
		}},
	{"ccp-reset", "CCP resets every connection",
		"class `vault_unreachable` within the retry budget",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.ccp.SetFaults(fakeccp.Faults{ResetRate: 1})
			w.expectClass("sap", "vault_unreachable", "", bound)
		}},
	{"wrong-server-ca", "wrong server CA (the store's CA bundle is another CA)",
		"class `vault_unreachable` (server not trusted); no request reaches CCP",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			other, err := fakeccp.EnsureDevPKI(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			w.provision()
			s := storeFor(w.ccp.URL)
			s.CABundle = caPEM(other)
			w.mustApply("prod", s)
			o := w.expectClassRequests("sap", "vault_unreachable", "", 0)
			if o.cred == nil || !contains(o.cred.Err.Message, "trust") {
				t.Fatalf("message does not say the server is not trusted: %v", o.cred.Err)
			}
		}},
	{"expired-cert-delivered", "expired client certificate delivered",
		"delivery rejected (`certificate-expired`), the previous certificate stays in use",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			c, err := sharedPKI.MintClientCert(fakeccp.ClientCertOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			d := w.build("DemoApp", appContent(t, c), 0)
			e := w.deliver(d)
			if e.Err == nil || !contains(e.Reason, "expired") {
				t.Fatalf("expired certificate: reason %q err %v, want a rejection for expiry", e.Reason, e.Err)
			}
			w.expectServed("sap", "Sap-Pr0d!pass")
		}},
	{"cert-expires-in-service", "client certificate expires while in use",
		"class `client_cert_rejected`; status marks the application expired and lists the problem",
		func(t *testing.T) {
			c, err := sharedPKI.MintClientCert(fakeccp.ClientCertOptions{NotAfter: time.Now().Add(2 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t, worldOptions{extraSerials: []string{c.Leaf.SerialNumber.Text(16)}})
			w.provision()
			w.mustApply("DemoApp", appContent(t, c))
			time.Sleep(time.Until(c.Leaf.NotAfter) + 1100*time.Millisecond)
			w.expectClass("sap", "client_cert_rejected", "", bound)
			st := w.status()
			if len(st.Applications) != 1 || !st.Applications[0].Expired || !contains(strings.Join(st.Problems, ";"), "expired") {
				t.Fatalf("status does not report the expiry: apps %+v problems %q", st.Applications, st.Problems)
			}
		}},
	{"revoked-cert", "revoked client certificate (CCP no longer authorises its serial)",
		"class `client_cert_rejected`, code APPAP306E, not retried (one request)",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			c, err := sharedPKI.MintClientCert(fakeccp.ClientCertOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.mustApply("DemoApp", appContent(t, c))
			w.expectClassRequests("sap", "client_cert_rejected", "APPAP306E", 1)
		}},
	{"password-changing", "password change in progress (CPM)",
		"served, flagged `password_change_in_process`",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			o := w.expectServed("rotating", "R0tating!pass")
			if !o.cred.PasswordChangeInProcess {
				t.Fatal("not flagged as a password change in process")
			}
		}},
	{"too-many-objects", "query matches two objects",
		"class `too_many_objects`, code APPAP227E, not retried",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.expectClassRequests("dup", "too_many_objects", "APPAP227E", 1)
		}},
	{"object-missing", "object missing in the Vault",
		"class `not_found`, code APPAP004E, not retried",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.expectClassRequests("missing", "not_found", "APPAP004E", 1)
		}},
	{"unknown-credential", "credential never delivered",
		"class `unknown_credential`; no request reaches CCP",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			w.expectClassRequests("nope", "unknown_credential", "", 0)
		}},
	{"iis-front-renegotiation", "CCP behind an IIS-like front (Apache, TLS 1.2) that asks for the client certificate by renegotiation after the request line",
		"served through the front; a CCP failure behind it keeps its class (`server_error` for a 500)",
		func(t *testing.T) {
			w, ccp := frontWorld(t, "iis-front-renegotiation", apachefront.Renegotiate)
			w.expectServed("sap", "Sap-Pr0d!pass")
			ccp.SetFaults(fakeccp.Faults{Status: 500})
			w.expectClass("sap", "server_error", "", bound)
			ccp.SetFaults(fakeccp.Faults{})
			w.expectServed("sap", "Sap-Pr0d!pass")
		}},
	{"iis-front-tls13-late-cert", "CCP behind a front speaking TLS 1.2 and 1.3 that asks for the client certificate after the TLS 1.3 handshake (Apache; IIS on Windows Server 2022/2025 alike)",
		"served with the default config: one TLS 1.2 retry, logged once, TLS 1.2 with that server from then on",
		func(t *testing.T) {
			w, _ := frontWorld(t, "iis-front-tls13-late-cert", apachefront.PostHandshake)
			for range 3 {
				w.expectServed("sap", "Sap-Pr0d!pass")
			}
			if n := strings.Count(w.logs.String(), "after the TLS 1.3 handshake"); n != 1 {
				t.Fatalf("the fallback was logged %d times, want once", n)
			}
		}},
	{"corrupt-delivery", "corrupt delivery (one payload byte flipped)",
		"rejected with its reason (status and `rejected/` with a .reason file); last good state kept",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			d := w.build("prod", storeFor("https://"+deadAddr(t)), 0)
			b := d.Marshal()
			i := strings.Index(string(b), "\n\n") + 5
			b[i] ^= 0x01
			w.drop(d.ID+".delivery", b)
			e, ok := w.event(d.ID, 5*time.Second)
			if !ok || e.Err == nil {
				t.Fatalf("corrupt delivery not rejected: %+v", e)
			}
			assertRejected(t, w, d.ID, e.Reason)
			w.expectServed("sap", "Sap-Pr0d!pass")
		}},
	{"replayed-delivery", "replayed delivery (an older store delivery dropped again)",
		"rejected as `replay`; the newer store stays in force",
		func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			w.provision()
			old := w.build("prod", storeFor("https://"+deadAddr(t)), 0)
			w.mustApply("prod", storeFor(w.ccp.URL))
			e := w.deliver(old)
			if e.Err == nil || e.Reason != "replay" {
				t.Fatalf("replay: reason %q err %v", e.Reason, e.Err)
			}
			assertRejected(t, w, old.ID, "replay")
			w.expectServed("sap", "Sap-Pr0d!pass")
		}},
	{"disk-full", "disk full while applying a delivery (state dir on a full tmpfs)",
		"the delivery is not applied and the last good state stays in force; once space is freed it is applied",
		testDiskFull},
	{"keystore-corrupt", "key store unusable (machine key file corrupt)",
		"the agent starts in needs-re-enrolment state: status says so, not ready, resolutions get needs_reenroll (503); sealed records are kept, not opened",
		testKeyStoreCorrupt},
	{"keystore-insecure", "key store insecure (machine key file readable by others)",
		"the key is not used and the agent does not crash-loop: it starts needing re-enrolment, status names the file and the chmod fix, resolutions get needs_reenroll",
		testKeyStoreInsecure},
	{"flood-rate", "socket flooded by one local caller (rate limit 5/s)",
		"the flooder gets 429 with Retry-After; another local user is still served",
		testFloodRate},
	{"flood-concurrency", "socket flooded with concurrent requests (cap 2, CCP slow)",
		"requests over the cap get 503 with Retry-After at once; those admitted are served",
		testFloodConcurrency},
	{"flood-no-rule", "a socket-group member with no policy rule floods the socket with requests whose body never comes (64 at a time, max_concurrent 4)",
		"it is refused (403) before its body is read or a shared slot is taken; an allowed runner (another account) and root are served throughout",
		testFloodNoRule},
	{"flood-connections", "a socket-group member with no policy rule opens 5,000 connections and keeps them",
		"the agent keeps at most api.max_connections_per_caller of them (the rest get a 503 and are closed at accept), so its descriptors stay bounded; an allowed runner and root are served",
		testFloodConnections},
	{"inbox-swapped", "the portal's drop account, owning the inbox's parent, swaps the inbox for a symlink to the agent's records",
		"the agent keeps acting on the inbox it opened: no record is moved, deleted or quarantined; status says the inbox was replaced; the real inbox still takes deliveries",
		testInboxSwapped},
	{"rejected-exdev", "inbox and state directory on different file systems (inbox on a tmpfs), a delivery rejected",
		"the rejected file is copied into `rejected/` with its reason file, not deleted",
		testRejectedAcrossFileSystems},
	{"group-key-last", "deliveries addressed to a group arrive before the group's key",
		"they wait in the inbox (status says so) and are applied when the key comes; the credential is served",
		testGroupKeyLast},
	{"record-corrupt", "a sealed record truncated while the agent is stopped, then an older delivery of its object dropped",
		"the older delivery is not applied: it waits in the inbox, and status names the record for an operator",
		testRecordCorrupt},
	{"machine-key-missing", "machine key removed while sealed records and a registration exist",
		"no new key is created: the agent needs re-enrolment, status says to run `enroll --rotate`, resolutions get needs_reenroll",
		testMachineKeyMissing},
	{"sigkill-apply", "SIGKILL during apply (agent killed at random moments while deliveries stream in)",
		"after restart the state is one of the delivered versions, nothing rejected, and it serves",
		testSigkillApply},
}

// expectClassRequests is expectClass within bound, counting what reaches
// the fake: it fails unless exactly n requests did (0: refused before CCP,
// 1: not retried, retries+1: retried to the end).
func (w *world) expectClassRequests(name, class, code string, n uint64) outcome {
	w.t.Helper()
	w.ccp.ResetCounters()
	o := w.expectClass(name, class, code, bound)
	if got := w.ccp.Counters().Requests; got != n {
		w.t.Fatalf("resolve %s: %d requests reached CCP, want %d", name, got, n)
	}
	return o
}

// assertRejected checks that status and the rejected directory both carry
// delivery id's rejection with reason.
func assertRejected(t *testing.T, w *world, id, reason string) {
	t.Helper()
	st := w.status()
	found := false
	for _, r := range st.Rejected {
		if r.DeliveryID == id || strings.Contains(r.File, id) {
			found = true
			if r.Reason == "" || (reason != "" && !strings.Contains(r.Reason, reason)) {
				t.Fatalf("status rejection reason %q, want %q", r.Reason, reason)
			}
		}
	}
	if !found {
		t.Fatalf("status does not list the rejected delivery %s: %+v", id, st.Rejected)
	}
	reasons, _ := filepath.Glob(filepath.Join(w.cfg.Paths.StateDir, "rejected", "*"+id+"*.reason"))
	if len(reasons) != 1 {
		t.Fatalf("rejected/ holds %d reason files for %s", len(reasons), id)
	}
}

// results are the rows' outcomes, filled by TestFaultMatrix.
var (
	resultsMu sync.Mutex
	results   = map[string]Row{}
)

func TestFaultMatrix(t *testing.T) {
	for _, f := range matrix {
		t.Run(f.name, func(t *testing.T) {
			start := time.Now()
			t.Cleanup(func() {
				r := Row{Fault: f.fault, Expected: f.expected, Result: Pass, Date: time.Now().UTC().Format(time.DateOnly)}
				switch {
				case t.Failed():
					r.Result = Fail
				case t.Skipped():
					r.Result = Skipped
					r.Detail = skipReasons[f.name]
				}
				resultsMu.Lock()
				results[f.name] = r
				resultsMu.Unlock()
				t.Logf("%s: %s in %v", f.name, r.Result, time.Since(start).Round(time.Millisecond))
			})
			f.run(t)
		})
	}
}

// skipReasons are what rows that skipped gave as reason.
var skipReasons = map[string]string{}

func skipRow(t *testing.T, name, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing prerequisite fails the run)", reason)
	}
	resultsMu.Lock()
	skipReasons[name] = reason
	resultsMu.Unlock()
	t.Skip(reason)
}

func TestMain(m *testing.M) {
	if child() {
		return
	}
	dir, err := os.MkdirTemp("", "faultmatrix-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sharedPKI, err = fakeccp.EnsureDevPKI(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fix, err := sharedPKI.Fixture()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	plantedPasswords = fix.Passwords()
	if len(plantedPasswords) == 0 {
		fmt.Fprintln(os.Stderr, "faultmatrix: the dev fixture has no passwords to look for in the logs")
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if os.Getenv("FAULTMATRIX_UPDATE") != "" {
		if err := writeMatrix(); err != nil {
			fmt.Fprintln(os.Stderr, "faultmatrix:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// writeMatrix writes the table into the README between the markers, or into
// MATRIX.md here when the README has none.
func writeMatrix() error {
	rows := make([]Row, 0, len(matrix))
	for _, f := range matrix {
		r, ok := results[f.name]
		if !ok {
			r = Row{Fault: f.fault, Expected: f.expected, Result: NotRun}
		}
		rows = append(rows, r)
	}
	table := Render(rows)
	err := Update(filepath.Join("..", "..", "README.md"), table)
	if err == nil {
		fmt.Println("faultmatrix: wrote the table into README.md")
		return nil
	}
	if !errors.Is(err, ErrNoMarkers) && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile("MATRIX.md", []byte(Standalone(table)), 0o644); err != nil {
		return err
	}
	fmt.Printf("faultmatrix: README.md has no markers (%v); wrote agent/faultmatrix/MATRIX.md\n", err)
	return nil
}

// frontWorld is a world provisioned with one store whose server is an
// Apache front of the given mode, with the fake CCP behind it (returned,
// for faults); the row is skipped where apache2 is not installed.
func frontWorld(t *testing.T, row string, mode apachefront.Mode) (*world, *fakeccp.Server) {
	t.Helper()
	if !apachefront.Available() {
		skipRow(t, row, "apache2 is not installed (scripts/prereqs.sh)")
	}
	w := newWorld(t, worldOptions{})
	fix, err := sharedPKI.Fixture()
	if err != nil {
		t.Fatal(err)
	}
	front, ccp := apachefront.StartWithFake(t, mode, sharedPKI, fix, nil)
	w.provision(front.URL)
	return w, ccp
}
