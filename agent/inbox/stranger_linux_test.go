package inbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// TestStrangersFilesAreRefused: in a sticky, world-writable inbox (which
// New accepts), a user who may not deliver drops files. Each is refused as
// foreign-owner (SPEC check 0) and taken out of the inbox, whether or not
// the agent may read it (under the shipped unit it has no
// CAP_DAC_OVERRIDE); what the agent keeps of them stays within the
// quarantine's bounds after a restart.
func TestStrangersFilesAreRefused(t *testing.T) {
	tests := []struct {
		name   string
		script string // run as the stranger in the inbox
		noDAC  bool   // scan without CAP_DAC_OVERRIDE
		reason string // in the rejection's reason
	}{
		{"a mode 0600 file the agent may not read", "umask 077 && echo junk > f1", true, "file not kept: the agent may not read it"},
		{"a sparse gigabyte", "truncate -s 1G f1", false, "uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stranger := localsocktest.NewUser(t)
			root := t.TempDir()
			openTree(t, root)
			inboxDir := filepath.Join(root, "inbox")
			if err := os.Mkdir(inboxDir, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, inboxDir, os.ModeSticky|0o777)
			e := newEnvAt(t, inboxDir, filepath.Join(root, "state"), settled)
			localsocktest.ShAs(t, stranger, fmt.Sprintf("cd %s && %s", inboxDir, tt.script))
			scan := func() { e.in.ScanOnce(t_ctx()) }
			if tt.noDAC {
				withoutDACOverride(t, scan)
			} else {
				scan()
			}
			select {
			case ev := <-e.events:
				if ev.Reason != "foreign-owner" {
					t.Fatalf("refused as %s (%v), want foreign-owner", ev.Reason, ev.Err)
				}
			default:
				names, _ := e.in.dir.names()
				t.Fatalf("not refused: the inbox holds %v; status %q", names, e.st.Load().InboxProblems)
			}
			if names, _ := e.in.dir.names(); len(names) != 0 {
				t.Fatalf("the inbox still holds %v", names)
			}
			rs := e.st.Load().Rejected
			if r := rs[len(rs)-1]; !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("rejection %q does not say %q", r.Reason, tt.reason)
			}
			var kept int64
			ents, _ := os.ReadDir(filepath.Join(e.stateDir, rejectedDir))
			for _, ent := range ents {
				if fi, err := ent.Info(); err == nil && !strings.HasSuffix(ent.Name(), reasonSuffix) {
					kept += fi.Size()
				}
			}
			if kept > e.in.o.MaxBytes {
				t.Errorf("the quarantine holds %d bytes of the stranger's file, more than a delivery's %d", kept, e.in.o.MaxBytes)
			}
			// After a restart the quarantine still keeps evidence.
			e.reopen()
			e.drop("junk", []byte("junk\n"))
			e.in.ScanOnce(t_ctx())
			e.next()
			rs = e.st.Load().Rejected
			if last := rs[len(rs)-1]; strings.Contains(last.Reason, "not kept") {
				t.Fatalf("after a restart a new rejection is not kept: %s", last.Reason)
			}
		})
	}
}
