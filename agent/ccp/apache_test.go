//go:build !windows

package ccp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp/apachefront"
	"github.com/credagent/credagent/agent/localapi/apitype"
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

// TestApachePostHandshake runs the client against Apache speaking TLS 1.2
// and 1.3 that asks for the client certificate per location. On TLS 1.3
// it would ask after the handshake, which Go cannot answer, and say 403.
// With the default settings the client falls back to TLS 1.2 once, logs it
// once, and keeps to TLS 1.2 with that server; capped at 1.2 it never
// tries 1.3; with TLS 1.3 forced it fails and says why.
func TestApachePostHandshake(t *testing.T) {
	f := startFront(t, apachefront.PostHandshake)

	t.Run("default falls back once", func(t *testing.T) {
		var logs agenttest.LockedBuffer
		o := fakeOptions(t, f.URL)
		o.Log = zerolog.New(&logs)
		c := newClient(t, o, devPKI.App)
		for i := range 3 {
			a, err := c.Get(context.Background(), sapReq)
			if err != nil {
				t.Fatalf("get %d: %v\n%s", i, err, f.ErrorLog())
			}
			a.Wipe()
		}
		if n := strings.Count(logs.String(), "after the TLS 1.3 handshake"); n != 1 {
			t.Errorf("fallback logged %d times:\n%s", n, logs.String())
		}
		st := c.Stats()
		if !st.Servers[0].TLS12Fallback {
			t.Errorf("stats do not show the fallback: %+v", st.Servers[0])
		}
		// One TLS 1.3 attempt, then TLS 1.2 for each of the three.
		if st.Attempts != 4 {
			t.Errorf("%d attempts, want 4", st.Attempts)
		}
	})

	t.Run("capped at 1.2", func(t *testing.T) {
		o := fakeOptions(t, f.URL)
		o.TLSMaxVersion = tls.VersionTLS12
		c := newClient(t, o, devPKI.App)
		a, err := c.Get(context.Background(), sapReq)
		if err != nil {
			t.Fatal(err)
		}
		a.Wipe()
		if st := c.Stats(); st.Attempts != 1 || st.Servers[0].TLS12Fallback {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("TLS 1.3 forced says why", func(t *testing.T) {
		o := fakeOptions(t, f.URL)
		o.TLSMaxVersion = tls.VersionTLS13
		c := newClient(t, o, devPKI.App)
		_, err := c.Get(context.Background(), sapReq)
		var e *ccp.Error
		if !errors.As(err, &e) || e.Class != apitype.ClassClientCertRejected || !e.LateCertRequest ||
			e.Code != "HTTP 403, HTML page" || !strings.Contains(err.Error(), "tls_max_version to 1.2") {
			t.Fatalf("got %v (%+v)", err, e)
		}
	})
}
