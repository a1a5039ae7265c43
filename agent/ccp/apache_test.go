//go:build !windows

package ccp_test

import (
	"context"
	"testing"

	"github.com/credagent/credagent/agent/ccp/fakeccp/apachefront"
)

// startFront starts the fake CCP behind an Apache front in the given mode.
func startFront(t *testing.T, mode apachefront.Mode) *apachefront.Front {
	t.Helper()
	f, _ := apachefront.StartWithFake(t, mode, devPKI, fixture(t), nil)
	return f
}

// TestApacheRenegotiation runs the client against Apache set up like IIS:
// TLS 1.2 only, and the client certificate asked for by renegotiation after
// the request line. Without tls.RenegotiateOnceAsClient this fails.
func TestApacheRenegotiation(t *testing.T) {
	f := startFront(t, apachefront.Renegotiate)
	c := newClient(t, fakeOptions(t, f.URL), devPKI.App)
	for i := range 3 {
		a, err := c.Get(context.Background(), sapReq)
		if err != nil {
			t.Fatalf("get %d through %s: %v\n%s", i, f.URL, err, f.ErrorLog())
		}
		if a.Content.RevealString() != fakePassword {
			t.Fatalf("password %q", a.Content.RevealString())
		}
		a.Wipe()
	}
	t.Log(f.AccessLog())
}
