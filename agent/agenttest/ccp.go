package agenttest

import (
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/rs/zerolog"
)

// DevPKI makes (or reuses) the fake CCP's dev PKI under root/ccp.
func DevPKI(t testing.TB, root string) *fakeccp.DevPKI {
	t.Helper()
	pki, err := fakeccp.EnsureDevPKI(filepath.Join(root, "ccp"))
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

// StartCCP starts a quiet fake CCP on pki's certificates, serving fix (nil:
// the dev fixture), and stops it when the test ends. mod, if set, changes
// the server's options first.
func StartCCP(t testing.TB, pki *fakeccp.DevPKI, fix *fakeccp.Fixture, mod func(*fakeccp.Options)) *fakeccp.Server {
	t.Helper()
	if fix == nil {
		var err error
		if fix, err = pki.Fixture(); err != nil {
			t.Fatal(err)
		}
	}
	log := zerolog.Nop()
	opts := pki.ServerOptions()
	opts.Logger = &log
	if mod != nil {
		mod(&opts)
	}
	srv, err := fakeccp.New(fix, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.SetFaults(fakeccp.Faults{})
		srv.Close()
	})
	return srv
}
