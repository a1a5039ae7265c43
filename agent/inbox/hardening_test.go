package inbox

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/secret"
)

// TestMaxLengthTargetsOfEveryKind: a target of SPEC's maximum length (128
// bytes) gives a record name within NAME_MAX for every kind, and survives a
// restart. Before record names were hashed, such a record could not be
// written and the delivery was retried forever.
func TestMaxLengthTargetsOfEveryKind(t *testing.T) {
	e := newEnv(t, nil)
	me := delivery.Machine(machineID)
	mpub := machineKey.PublicKey()
	long := func(c string) string { return strings.Repeat(c, delivery.MaxNameBytes) }
	app, group, store, cred, gone := long("a"), long("g"), long("s"), long("c"), long("x")
	e.apply("gk", build(t, hdr(group, 1, me), &delivery.GroupKey{PrivateKey: secret.New(groupKeyA.Bytes())}, mpub, signer))
	e.apply("app", build(t, hdr(app, 1, delivery.Group(group)), validApp(t, 30), groupKeyA.PublicKey(), signer))
	e.apply("st", build(t, hdr(store, 1, me), &delivery.Store{Servers: []string{"https://ccp"}, AppID: app}, nil, signer))
	e.apply("cr", build(t, hdr(cred, 1, me), &delivery.Credential{Store: store, Object: "o"}, nil, signer))
	e.apply("cr2", build(t, hdr(gone, 1, me), &delivery.Credential{Store: store, Object: "o"}, nil, signer))
	e.apply("rv", build(t, hdr(gone, 2, me), &delivery.Revoke{Revokes: delivery.KindCredential}, nil, signer))
	e.apply("gk2", build(t, hdr(long("h"), 1, me), &delivery.GroupKey{PrivateKey: secret.New(groupKeyB.Bytes())}, mpub, signer))
	e.apply("rvg", build(t, hdr(long("h"), 2, me), &delivery.Revoke{Revokes: delivery.KindGroupKey}, nil, signer))
	recs, _ := filepath.Glob(filepath.Join(e.stateDir, "records", "*", "*"))
	if len(recs) < 6 {
		t.Fatalf("records: %v", recs)
	}
	for _, r := range recs {
		// Room for fsutil's temporary name (".<name>.tmp-<16 hex>") and
		// the ".withdrawn" suffix within NAME_MAX (255).
		if n := len(filepath.Base(r)); n > 140 {
			t.Errorf("record name of %d bytes: %s", n, filepath.Base(r))
		}
	}
	e.reopen()
	s := e.st.Load()
	if s.Applications[app] == nil || s.Stores[store] == nil || s.Credentials[cred] == nil || s.Credentials[gone] != nil || len(s.GroupKeys) != 1 {
		t.Fatalf("after restart: apps %d stores %d creds %v keys %d", len(s.Applications), len(s.Stores), s.Credentials, len(s.GroupKeys))
	}
	// The revocation still counts against a replay after the restart.
	e.drop("old", build(t, hdr(gone, 2, me), &delivery.Credential{Store: store, Object: "o"}, nil, signer))
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "replay" {
		t.Fatalf("replay of a revoked long-named credential: %v", ev.Err)
	}
}

// TestLegacyRecordNamesAreRenamed: records named by the hex of the name
// (before hashing) load and are given their current name.
func TestLegacyRecordNamesAreRenamed(t *testing.T) {
	e := newEnv(t, nil)
	me := delivery.Machine(machineID)
	e.apply("cr", build(t, hdr("bot", 3, me), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer))
	dir := filepath.Join(e.stateDir, "records", "credential")
	cur := filepath.Join(dir, recordStem("bot")+".delivery")
	old := filepath.Join(dir, legacyStem("bot")+".delivery")
	if err := os.Rename(cur, old); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if e.st.Load().Credentials["bot"] == nil {
		t.Fatal("a legacy-named record did not load")
	}
	if _, err := os.Stat(cur); err != nil {
		t.Fatalf("not renamed: %v", err)
	}
	e.drop("old", build(t, hdr("bot", 2, me), &delivery.Credential{Store: "prod", Object: "x"}, nil, signer))
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "replay" {
		t.Fatalf("replay after the rename: %v", ev.Err)
	}
}

// TestLongInboxNameIsQuarantined: a 255-byte inbox file name is rejected
// into the quarantine under a shortened name, its content kept, instead of
// being deleted because the quarantine name would not fit.
func TestLongInboxNameIsQuarantined(t *testing.T) {
	e := newEnv(t, settled)
	name := strings.Repeat("n", 255)
	content := []byte("not a delivery\n")
	if err := os.WriteFile(filepath.Join(e.inbox, name), content, 0o600); err != nil {
		t.Fatal(err)
	}
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "malformed" {
		t.Fatalf("got %v", ev.Err)
	}
	kept := rejectedData(t, e)
	if len(kept) != 1 || !bytes.Equal(kept[0], content) {
		t.Fatalf("quarantine holds %q, want the file's content", kept)
	}
}

// settled makes every file look written long ago, so that a malformed one
// is rejected at once rather than given time to be completed.
func settled(o *Options) {
	o.Now = func() time.Time { return time.Now().Add(time.Hour) }
}

// rejectedData returns the contents of the rejected files kept.
func rejectedData(t *testing.T, e *env) [][]byte {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.stateDir, rejectedDir))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), reasonSuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.stateDir, rejectedDir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestControlCharactersInNamesAreQuoted: a newline in an inbox file name
// cannot add a line to a reason file or to the rejection status shows.
func TestControlCharactersInNamesAreQuoted(t *testing.T) {
	// Names that would mislead when printed as they are: on Unix any byte
	// but '/' and NUL; Windows refuses control characters, '"' and '\' in
	// file names, but takes format characters that reorder or hide text.
	names := []string{"rtl\u202eoverride.delivery", "zero\u200bwidth"}
	if runtime.GOOS != "windows" {
		names = append(names, "x\nreason: fake-reason\nerror: none", "a\rb", "tab\there", "esc\x1b[31mred", "bad\xffutf8", `quote"and\back`)
	}
	for _, name := range names {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			e := newEnv(t, settled)
			e.drop(name, []byte("junk\n"))
			e.in.ScanOnce(t_ctx())
			e.next()
			r := e.st.Load().Rejected
			if len(r) != 1 || strings.ContainsAny(r[0].File+r[0].Reason, "\n\r\x1b\u202e\u200b") {
				t.Fatalf("status rejection %q", r)
			}
			notes, _ := filepath.Glob(filepath.Join(e.stateDir, rejectedDir, "*"+reasonSuffix))
			if len(notes) != 1 {
				t.Fatalf("reason files %v", notes)
			}
			b, _ := os.ReadFile(notes[0])
			f := parseReason(string(b))
			if f["reason"] != "malformed" || strings.Count("\n"+string(b), "\nreason: ") != 1 || strings.ContainsAny(string(b), "\r\x1b\u202e\u200b") {
				t.Fatalf("reason file injected: %q", b)
			}
			if f["file"] == name {
				t.Fatalf("file name not quoted: %q", f["file"])
			}
			data, _ := filepath.Glob(filepath.Join(e.stateDir, rejectedDir, "*"))
			for _, d := range data {
				if strings.ContainsAny(filepath.Base(d), "\n\r\x1b\"\\\u202e\u200b") {
					t.Fatalf("quarantine name %q", filepath.Base(d))
				}
			}
			// After a restart, the same, read back from the reason file.
			e.reopen()
			if r := e.st.Load().Rejected; len(r) != 1 || strings.ContainsAny(r[0].File+r[0].Reason, "\n\r\x1b\u202e\u200b") || r[0].File != f["file"] {
				t.Fatalf("after restart: %q", r)
			}
		})
	}
}

// TestQuarantineKeepsTheOldestOfEachReason: a flood of junk from the drop
// account cannot push the first rejection of another reason out of the
// quarantine, the directory stays bounded, and the rejections are listed
// again after a restart.
func TestQuarantineKeepsTheOldestOfEachReason(t *testing.T) {
	e := newEnv(t, settled)
	me := delivery.Machine(machineID)
	evidence := build(t, hdr("app", 1, me), validApp(t, 40), machineKey.PublicKey(), rogue)
	e.drop("0-evidence", evidence)
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "unknown-signer" {
		t.Fatalf("got %v", ev.Err)
	}
	const flood = 250
	for i := range flood {
		e.drop(fmt.Sprintf("junk-%03d", i), []byte("junk\n"))
	}
	e.in.ScanOnce(t_ctx())
	for range flood {
		e.next()
	}
	if n := len(e.in.dir.mustNames(t)); n != 0 {
		t.Fatalf("%d files left in the inbox", n)
	}
	kept := rejectedData(t, e)
	if len(kept) != MaxQuarantinedPerReason+1 {
		t.Fatalf("quarantine holds %d files, want %d", len(kept), MaxQuarantinedPerReason+1)
	}
	found := false
	for _, k := range kept {
		found = found || bytes.Equal(k, evidence)
	}
	if !found {
		t.Fatal("the first rejection of another reason was pushed out of the quarantine")
	}
	e.reopen()
	rs := e.st.Load().Rejected
	if len(rs) == 0 || rs[0].Reason[:len("unknown-signer")] != "unknown-signer" {
		t.Fatalf("after a restart status lists %d rejections, first %+v", len(rs), rs)
	}
	// The counts survive the restart too: the flood goes on being dropped.
	e.drop("junk-more", []byte("junk\n"))
	e.in.ScanOnce(t_ctx())
	e.next()
	if n := len(rejectedData(t, e)); n != MaxQuarantinedPerReason+1 {
		t.Fatalf("after a restart the quarantine grew to %d", n)
	}
}

// TestQuarantineBoundsHugeFiles: a file far larger than a delivery may be
// (here a sparse gigabyte, which any user who can write to the inbox makes
// with one truncate) is kept as its first MaxBytes, not moved in whole; and
// one already in the rejected directory (moved in whole by an earlier
// version) counts for MaxBytes. Either way the quarantine goes on keeping
// rejections after a restart instead of reading as full for good.
func TestQuarantineBoundsHugeFiles(t *testing.T) {
	sparse := func(t *testing.T, p string) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(1 << 30); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// plant puts the huge file in place; keptNow: the inbox kept it
		// in this run.
		plant   func(t *testing.T, e *env)
		keptNow bool
	}{
		{"dropped in the inbox", func(t *testing.T, e *env) {
			sparse(t, filepath.Join(e.inbox, "huge"))
			e.in.ScanOnce(t_ctx())
			if ev := e.next(); ev.Reason != "too-large" {
				t.Fatalf("got %v", ev.Err)
			}
		}, true},
		{"left in the rejected directory by an earlier version", func(t *testing.T, e *env) {
			dir := filepath.Join(e.stateDir, rejectedDir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			sparse(t, filepath.Join(dir, "20260101T000000.000000000Z-huge"))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, settled)
			tt.plant(t, e)
			if tt.keptNow {
				var total int64
				ents, _ := os.ReadDir(filepath.Join(e.stateDir, rejectedDir))
				for _, ent := range ents {
					if fi, err := ent.Info(); err == nil && !strings.HasSuffix(ent.Name(), reasonSuffix) {
						total += fi.Size()
					}
				}
				if total > e.in.o.MaxBytes {
					t.Fatalf("the rejected directory holds %d bytes, more than one delivery's %d", total, e.in.o.MaxBytes)
				}
			}
			e.reopen()
			e.drop("junk", []byte("junk\n"))
			e.in.ScanOnce(t_ctx())
			e.next()
			rs := e.st.Load().Rejected
			if last := rs[len(rs)-1]; strings.Contains(last.Reason, "not kept") {
				t.Fatalf("after a restart a new rejection is not kept: %s", last.Reason)
			}
		})
	}
}

func (d *inboxDir) mustNames(t *testing.T) []string {
	t.Helper()
	n, err := d.names()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCorruptRecordKeepsCountingForReplays: after the record of seq 2 is
// truncated, the older seq 1 delivery of the same object is not applied:
// it waits, status says why, and it is applied only once an operator has
// removed the record.
func TestCorruptRecordKeepsCountingForReplays(t *testing.T) {
	for _, kind := range []string{"application", "credential"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, nil)
			me := delivery.Machine(machineID)
			mk := func(seq uint64) []byte {
				if kind == "application" {
					return build(t, hdr("app", seq, me), validApp(t, int64(50+seq)), machineKey.PublicKey(), signer)
				}
				return build(t, hdr("app", seq, me), &delivery.Credential{Store: "prod", Object: fmt.Sprint(seq)}, nil, signer)
			}
			old := mk(1)
			e.apply("v1", old)
			e.apply("v2", mk(2))
			rec := filepath.Join(e.stateDir, recordsDir, kind, recordStem("app")+".delivery")
			b, err := os.ReadFile(rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rec, b[:len(b)/2], 0o600); err != nil {
				t.Fatal(err)
			}
			e.reopen()
			if len(e.st.Load().InboxProblems) != 1 || !strings.Contains(e.st.Load().InboxProblems[0], rec) {
				t.Fatalf("status problems %q", e.st.Load().InboxProblems)
			}
			p := e.drop("replay", old)
			e.in.ScanOnce(t_ctx())
			select {
			case ev := <-e.events:
				t.Fatalf("the older delivery was handled after its record was corrupted: %+v", ev)
			default:
			}
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("the delivery did not wait: %v", err)
			}
			// The operator removes the record: the object takes deliveries.
			os.Remove(rec)
			e.in.ScanOnce(t_ctx())
			if ev := e.next(); ev.Err != nil {
				t.Fatalf("after the operator removed the record: %v", ev.Err)
			}
			if len(e.st.Load().InboxProblems) != 0 {
				t.Fatalf("problem not cleared: %q", e.st.Load().InboxProblems)
			}
		})
	}
}

// TestGroupDeliveriesInEveryOrder drops a group's key and the deliveries
// addressed to the group in every order: each is applied, none rejected.
func TestGroupDeliveriesInEveryOrder(t *testing.T) {
	me := delivery.Machine(machineID)
	robots := delivery.Group("robots")
	files := map[string]func(t *testing.T) []byte{
		"gk": func(t *testing.T) []byte {
			return build(t, hdr("robots", 1, me), &delivery.GroupKey{PrivateKey: secret.New(groupKeyA.Bytes())}, machineKey.PublicKey(), signer)
		},
		"app": func(t *testing.T) []byte {
			return build(t, hdr("app", 1, robots), validApp(t, 60), groupKeyA.PublicKey(), signer)
		},
		"st": func(t *testing.T) []byte {
			return build(t, hdr("prod", 1, robots), &delivery.Store{Servers: []string{"https://ccp"}, AppID: "app"}, nil, signer)
		},
		"cr": func(t *testing.T) []byte {
			return build(t, hdr("bot", 1, robots), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer)
		},
	}
	for _, order := range permutations([]string{"gk", "app", "st", "cr"}) {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			e := newEnv(t, nil)
			for i, n := range order {
				// Names sort in drop order; one scan per drop, as files
				// arriving one by one.
				e.drop(fmt.Sprintf("%d-%s", i, n), files[n](t))
				e.in.ScanOnce(t_ctx())
			}
			for range order {
				select {
				case ev := <-e.events:
					if ev.Err != nil {
						t.Fatalf("%s rejected: %v", ev.File, ev.Err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("not every delivery was applied")
				}
			}
			s := e.st.Load()
			if s.Applications["app"] == nil || s.Stores["prod"] == nil || s.Credentials["bot"] == nil || len(s.GroupKeys) != 1 || len(s.InboxProblems) != 0 {
				t.Fatalf("state %+v, problems %q", s, s.InboxProblems)
			}
		})
	}
}

func permutations(s []string) [][]string {
	if len(s) <= 1 {
		return [][]string{append([]string(nil), s...)}
	}
	var out [][]string
	for i := range s {
		rest := append(append([]string(nil), s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{s[i]}, p...))
		}
	}
	return out
}

// TestGroupWaitIsBounded: a group delivery whose key never comes is
// rejected once GroupWait has passed, and no more than MaxGroupWaiting
// wait at once.
func TestGroupWaitIsBounded(t *testing.T) {
	now := time.Now()
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now }; o.GroupWait = time.Minute })
	robots := delivery.Group("robots")
	for i := range MaxGroupWaiting + 3 {
		e.drop(fmt.Sprintf("w%03d", i), build(t, hdr(fmt.Sprintf("cred-%d", i), 1, robots), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer))
	}
	e.in.ScanOnce(t_ctx())
	for range 3 {
		if ev := e.next(); ev.Reason != "wrong-recipient" {
			t.Fatalf("past the count bound: %v", ev.Err)
		}
	}
	if p := e.st.Load().InboxProblems; len(p) != 1 || !strings.Contains(p[0], fmt.Sprint(MaxGroupWaiting)) {
		t.Fatalf("status problems %q", p)
	}
	now = now.Add(2 * time.Minute)
	e.in.ScanOnce(t_ctx())
	for range MaxGroupWaiting {
		if ev := e.next(); ev.Reason != "wrong-recipient" {
			t.Fatalf("past the age bound: %v", ev.Err)
		}
	}
	if p := e.st.Load().InboxProblems; len(p) != 0 {
		t.Fatalf("status problems %q", p)
	}
}

// TestConfiguredGroup: a machine in a group by configuration (Options.Groups,
// config inbox.groups) applies the group's unsealed deliveries without
// holding its key.
func TestConfiguredGroup(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Groups = []string{"robots"} })
	e.apply("cr", build(t, hdr("bot", 1, delivery.Group("robots")), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer))
}

// TestCloseTwiceClosesOnce: a second Close does nothing. Closing the
// directory's descriptor (handle) twice would close whatever the process
// opened with the same number in between: on Windows an I/O completion
// port or a directory another goroutine is reading.
func TestCloseTwiceClosesOnce(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.in.Close(); err != nil {
		t.Fatal(err)
	}
	// Opened after the first Close: it may get the number just freed.
	var files []*os.File
	for i := 0; i < 4; i++ {
		f, err := os.Open(e.stateDir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	if err := e.in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for i, f := range files {
		if _, err := f.Stat(); err != nil {
			t.Fatalf("a file opened after the first Close was closed by the second (file %d): %v", i, err)
		}
	}
}
