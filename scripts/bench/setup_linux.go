package main

import (
	"crypto/tls"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/localapi/client"
)

// The account every resolution asks for, from the dev fixture.
const (
	benchAppID  = "DemoApp"
	benchSafe   = "RPA-Prod"
	benchFolder = "Root"
	benchObject = "sap-prod-admin"
	benchStore  = "rpa-prod"
	benchCred   = "sap-prod-admin"
	// poolSize is the agent's CCP pool (config ccp.pool_size default).
	poolSize = ccp.DefaultPoolSize
)

// agentConfig is written to each dev dir's config.yaml, over the dev
// defaults: the only change is the per-caller rate limit (200/s by default),
// which would otherwise cap the throughput of the one benchmark caller.
const agentConfig = `# written by scripts/bench: lift the per-caller rate limit for the benchmark
api:
  rate_per_second: 1000000
  rate_burst: 1000000
`

func (h *harness) setup() error {
	var err error
	fakeDir := filepath.Join(h.root, "ccp")
	if h.pki, err = fakeccp.EnsureDevPKI(fakeDir); err != nil {
		return err
	}
	if h.fake, err = rig.StartProc("fakeccp", filepath.Join(h.root, "fakeccp.log"), h.self, childFake, fakeDir); err != nil {
		return err
	}
	if h.fakeURL, _, err = h.fake.WaitLine("listening on ", 20*time.Second); err != nil {
		return err
	}
	if h.fakeAdmin, _, err = h.fake.WaitLine("admin on ", 5*time.Second); err != nil {
		return err
	}
	if h.fakeHS, _, err = h.fake.WaitLine("handshakes on ", 5*time.Second); err != nil {
		return err
	}
	if h.bare, err = rig.StartProc("bare mTLS server", filepath.Join(h.root, "bare.log"), h.self, childBare, fakeDir); err != nil {
		return err
	}
	if h.bareURL, _, err = h.bare.WaitLine("listening on ", 20*time.Second); err != nil {
		return err
	}
	fmt.Printf("fake CCP %s (admin %s), bare mTLS server %s\n", h.fakeURL, h.fakeAdmin, h.bareURL)

	caPEM, err := os.ReadFile(h.pki.CAFile)
	if err != nil {
		return err
	}
	app := h.pki.App
	h.direct, err = ccp.New(ccp.Options{Servers: []string{h.fakeURL}, CABundle: caPEM, PoolSize: poolSize, Observe: h.directAttempts.observe},
		func() (*tls.Certificate, error) { return &app, nil })
	if err != nil {
		return err
	}
	h.plain = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     h.pki.ClientTLSConfig(),
		MaxIdleConns:        128,
		MaxIdleConnsPerHost: 128,
		DisableCompression:  true,
	}}

	h.agentDir = filepath.Join(h.root, "agent")
	// The main agent serves its metrics, so that the latency rounds can
	// read its own timings of resolutions and CCP attempts (inagent.go).
	if h.agentMetrics, err = rig.FreeLoopbackAddr(); err != nil {
		return err
	}
	var ready time.Time
	if h.agent, h.socket, ready, err = h.startAgentWith(h.agentDir, "agent", "metrics:\n  listen: "+h.agentMetrics+"\n"); err != nil {
		return err
	}
	fmt.Printf("agent pid %d ready in %v on %s\n", h.agent.Pid(), ready.Sub(h.agent.Started).Round(time.Millisecond), h.socket)
	h.api = client.New(h.socket)
	if err := h.startLocalAPI(); err != nil {
		return fmt.Errorf("the local API alone: %w", err)
	}
	p, err := h.newPortal(h.agentDir)
	if err != nil {
		return err
	}
	if err := p.deliverBasics(h); err != nil {
		return err
	}
	// Wait until the three deliveries are applied and a resolution works.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := h.resolveAgent(h.ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || h.ctx.Err() != nil {
			return fmt.Errorf("the agent did not resolve %s after the deliveries: %w", benchCred, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// prepareAgentDir makes a dev dir with the benchmark's config.yaml.
func prepareAgentDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(agentConfig), 0o600)
}

// startAgent starts bin/credagent run --dev dir and waits until it is ready.
func (h *harness) startAgent(dir, name string) (*rig.Proc, string, time.Time, error) {
	return h.startAgentWith(dir, name, "")
}

// startAgentWith is startAgent with more config appended to agentConfig.
func (h *harness) startAgentWith(dir, name, more string) (*rig.Proc, string, time.Time, error) {
	if err := prepareAgentDir(dir); err != nil {
		return nil, "", time.Time{}, err
	}
	if more != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(agentConfig+more), 0o600); err != nil {
			return nil, "", time.Time{}, err
		}
	}
	p, err := rig.StartProc(name, filepath.Join(h.root, name+".log"), filepath.Join(h.binDir, "credagent"), "run", "--dev", dir)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	sock, at, err := p.WaitLine("credagent (dev) listening on ", 30*time.Second)
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, "", time.Time{}, err
	}
	return p, strings.TrimSpace(sock), at, nil
}

// newPortal is the portal's side for the dev agent of agentDir.
func (h *harness) newPortal(agentDir string) (*portalSide, error) {
	cfg, err := daemon.DevConfig(agentDir)
	if err != nil {
		return nil, err
	}
	app, err := agenttest.DevApplication(h.pki)
	if err != nil {
		return nil, err
	}
	hp, err := agenttest.LoadPortal(filepath.Join(agentDir, daemon.DevSigningKeyFile),
		filepath.Join(cfg.Paths.StateDir, daemon.DevRegistration), cfg.Paths.InboxDir)
	if err != nil {
		return nil, err
	}
	return &portalSide{Portal: hp, app: app}, nil
}

// portalSide is the harness's portal with the dev application certificate.
type portalSide struct {
	*agenttest.Portal
	app *delivery.Application
}

func (p *portalSide) make(target string, c delivery.Content) (*delivery.Delivery, error) {
	return p.Make(target, c)
}

func (p *portalSide) drop(target string, c delivery.Content) error {
	_, err := p.Drop(target, c)
	return err
}

// deliverBasics gives the agent DemoApp, the store on the fake and the
// credential the benchmark resolves, as scripts/demo.sh does with credseal.
func (p *portalSide) deliverBasics(h *harness) error {
	caPEM, err := os.ReadFile(h.pki.CAFile)
	if err != nil {
		return err
	}
	if err := p.drop(benchAppID, p.app); err != nil {
		return err
	}
	st := &delivery.Store{DisplayName: "bench", Servers: []string{h.fakeURL}, AppID: benchAppID,
		Safe: benchSafe, Folder: benchFolder, CABundle: string(caPEM)}
	if err := p.drop(benchStore, st); err != nil {
		return err
	}
	return p.drop(benchCred, &delivery.Credential{Store: benchStore, Object: benchObject})
}

// fakeCounters reads the fake's counters over its admin API.
func (h *harness) fakeCounters() (fakeccp.Counters, error) {
	var c fakeccp.Counters
	return c, rig.GetJSON(h.ctx, h.fakeAdmin+"/counters", &c)
}
