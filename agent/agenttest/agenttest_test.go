package agenttest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// The fake answers as CCP does: the account, not_found, or unreachable
// while down; and it counts every call with its reason.
func TestFetcher(t *testing.T) {
	f := NewFetcher(map[string]string{"sap": Planted})
	tests := []struct {
		name   string
		down   bool
		object string
		class  apitype.Class
	}{
		{"served", false, "sap", ""},
		{"missing", false, "nope", apitype.ClassNotFound},
		{"down", true, "sap", apitype.ClassVaultUnreachable},
		{"up again", false, "sap", ""},
	}
	for i, tt := range tests {
		f.SetDown(tt.down)
		a, err := f.Get(context.Background(), ccp.Request{Object: tt.object, Reason: tt.name})
		if got := apitype.ClassOf(err); got != tt.class {
			t.Fatalf("%s: class %q, want %q (%v)", tt.name, got, tt.class, err)
		}
		if err == nil && (a.Content.RevealString() != Planted || a.UserName() != "svc_"+tt.object) {
			t.Fatalf("%s: wrong account %v", tt.name, a.Properties)
		}
		if f.Calls() != i+1 || f.Reasons()[i] != tt.name {
			t.Fatalf("%s: %d calls, reasons %q", tt.name, f.Calls(), f.Reasons())
		}
	}
}

func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Fatalf("%d bytes, want 800", len(got))
	}
}
