package localsock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"unsafe"

	"github.com/credagent/credagent/platform/winver"
	"golang.org/x/sys/windows"
)

// ace is one entry of a DACL, with generic rights mapped to a pipe's
// specific rights, as Windows stores them.
type ace struct {
	typ  byte
	mask windows.ACCESS_MASK
	sid  string
}

func (a ace) String() string { return fmt.Sprintf("(%d;%#x;%s)", a.typ, a.mask, a.sid) }

// fileAllAccess is FILE_ALL_ACCESS: STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE |
// 0x1FF.
const fileAllAccess = 0x1F01FF

// fileGeneric maps generic rights as the file system (and so a named pipe)
// does: GENERIC_ALL is FILE_ALL_ACCESS, and so on.
func fileGeneric(m windows.ACCESS_MASK) windows.ACCESS_MASK {
	out := m &^ (windows.GENERIC_ALL | windows.GENERIC_READ | windows.GENERIC_WRITE | windows.GENERIC_EXECUTE)
	if m&windows.GENERIC_ALL != 0 {
		out |= fileAllAccess
	}
	if m&windows.GENERIC_READ != 0 {
		out |= windows.FILE_GENERIC_READ
	}
	if m&windows.GENERIC_WRITE != 0 {
		out |= windows.FILE_GENERIC_WRITE
	}
	if m&windows.GENERIC_EXECUTE != 0 {
		out |= windows.FILE_GENERIC_EXECUTE
	}
	return out
}

func daclEntries(t *testing.T, sd *windows.SECURITY_DESCRIPTOR) []ace {
	t.Helper()
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatalf("DACL: %v", err)
	}
	var out []ace
	for i := uint32(0); ; i++ {
		var a *windows.ACCESS_ALLOWED_ACE // a deny entry has the same layout
		if err := windows.GetAce(dacl, i, &a); err != nil {
			break
		}
		sid := (*windows.SID)(unsafe.Pointer(&a.SidStart))
		out = append(out, ace{typ: a.Header.AceType, mask: fileGeneric(a.Mask), sid: sid.String()})
	}
	return out
}

// TestPipeDescriptorApplied reads the DACL back from a client's handle of
// the pipe and compares it with the descriptor Listen asked for.
func TestPipeDescriptorApplied(t *testing.T) {
	b := make([]byte, 8)
	rand.Read(b)
	tests := []struct {
		name string
		path string
		opts ListenOptions
	}{
		{"dev", `\\.\pipe\credagent-test-` + hex.EncodeToString(b), ListenOptions{Dev: true}},
		{"service", ProtectedPrefix + "credagent-test-" + hex.EncodeToString(b), ListenOptions{Allow: []string{"S-1-5-32-545"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.opts.Dev && !windows.GetCurrentProcessToken().IsElevated() && !winver.IsWine() {
				t.Skip("creating a pipe under the protected prefix needs an elevated administrator")
			}
			sddl, err := pipeSDDL(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			wantSD, err := windows.SecurityDescriptorFromString(sddl)
			if err != nil {
				t.Fatal(err)
			}
			want := daclEntries(t, wantSD)

			ln, err := Listen(tt.path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					c.Close()
				}
			}()
			c, err := Dial(context.Background(), tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h, err := handleOf(c)
			if err != nil {
				t.Fatal(err)
			}
			gotSD, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.DACL_SECURITY_INFORMATION)
			if err != nil {
				t.Fatalf("GetSecurityInfo: %v", err)
			}
			got := daclEntries(t, gotSD)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("the pipe's DACL is %v (%s), want %v (%s)", got, gotSD, want, sddl)
			}
			if ctl, _, err := gotSD.Control(); err != nil || ctl&windows.SE_DACL_PROTECTED == 0 {
				t.Errorf("the pipe's DACL is not protected (control %#x, %v)", ctl, err)
			}
		})
	}
}
