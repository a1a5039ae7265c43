//go:build !windows

package childproc

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestInheritNumbersAndOutcome: inherited pipes are numbered 3, 4, ... in
// the child, which reads what was written; exit codes and signals are
// reported as they happened.
func TestInheritNumbersAndOutcome(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", `cat <&"$A"; printf ' '; cat <&"$B"; exit 3`)
	var refs []string
	for _, msg := range []string{"first", "second"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := Inherit(cmd, r)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		w.Write([]byte(msg))
		w.Close()
		defer r.Close()
	}
	if strings.Join(refs, ",") != "3,4" {
		t.Fatalf("descriptors %v, want 3,4", refs)
	}
	cmd.Env = append(os.Environ(), "A="+refs[0], "B="+refs[1])
	out, err := cmd.Output()
	if string(out) != "first second" {
		t.Fatalf("child read %q (%v)", out, err)
	}
	if o := OutcomeOf(cmd.ProcessState); o.Code != 3 || o.Signal != nil {
		t.Fatalf("outcome %+v, want exit 3", o)
	}

	kill := exec.Command("/bin/sh", "-c", "kill -TERM $$")
	kill.Run()
	if o := OutcomeOf(kill.ProcessState); o.Signal != syscall.SIGTERM || o.Code != 128+int(syscall.SIGTERM) {
		t.Fatalf("outcome %+v, want SIGTERM and 143", o)
	}
}
