package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"github.com/credagent/credagent/platform/paths"
	"github.com/rs/zerolog"
)

func TestResolveAndCheckCommands(t *testing.T) {
	dir := t.TempDir()
	self := localsocktest.SelfIdentity(t)
	serveDevAPI(t, dir, agenttest.State("sap", "gone"), map[string]string{"sap": "hunter2!"},
		resolve.Rule{Name: "me", UIDs: self.UIDs, SIDs: self.SIDs, Credentials: []string{"*"}})

	tests := []struct {
		args     []string
		wantCode int
		want     []string
		not      []string
	}{
		{[]string{"resolve", "--dev", dir, "sap"}, 0, []string{`sap: username="svc_sap" password=<hidden, 8 bytes>`}, []string{"hunter2"}},
		{[]string{"resolve", "--dev", dir, "--show", "sap"}, 0, []string{`password="hunter2!"`}, nil},
		{[]string{"resolve", "--dev", dir, "--json", "sap", "gone"}, 1, []string{`"password_length": 8`, `"class": "not_found"`}, []string{"hunter2"}},
		{[]string{"check", "--dev", dir, "sap"}, 0, []string{"sap: ok"}, []string{"hunter2"}},
		{[]string{"check", "--dev", dir, "sap", "gone"}, 1, []string{"sap: ok", "gone: error not_found (APPAP004E)"}, nil},
		{[]string{"check", "--dev", filepath.Join(dir, "nope"), "sap"}, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			resolveFlags.show = false
			var stdout, stderr bytes.Buffer
			code := mainErr(tt.args, &stdout, &stderr)
			out := stdout.String()
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stdout %s; stderr %s", code, tt.wantCode, out, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out+stderr.String(), n) {
					t.Errorf("output holds %q:\n%s", n, out)
				}
			}
		})
	}
}

// TestVersionWritesToItsStdout: a subcommand writes to the stdout it is
// given, not to the process's.
func TestVersionWritesToItsStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := mainErr([]string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "credagent ") {
		t.Fatalf("stdout %q, want the version line", stdout.String())
	}
}

// serveDevAPI serves the local API on the dev socket (or pipe) of dir until
// the test ends: the resolver over st, a CCP that knows secrets by object,
// and one policy rule.
func serveDevAPI(t *testing.T, dir string, st *state.State, secrets map[string]string, rule resolve.Rule) {
	t.Helper()
	r, err := resolve.New(resolve.Options{
		State: st,
		NewFetcher: func(*state.Store, *state.Application) (resolve.Fetcher, error) {
			return agenttest.NewFetcher(secrets), nil
		},
		Policy: resolve.Policy{Rules: []resolve.Rule{rule}},
		Audit:  zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := localsock.Listen(paths.Dev(dir).Socket, localsock.ListenOptions{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- localapi.NewServer(localapi.Options{Resolver: r}).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
}
