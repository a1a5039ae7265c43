package main

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/secret"
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
	if h.fake, err = startProc("fakeccp", filepath.Join(h.root, "fakeccp.log"), h.self, childFake, fakeDir); err != nil {
		return err
	}
	if h.fakeURL, _, err = h.fake.waitLine("listening on ", 20*time.Second); err != nil {
		return err
	}
	if h.fakeAdmin, _, err = h.fake.waitLine("admin on ", 5*time.Second); err != nil {
		return err
	}
	if h.fakeHS, _, err = h.fake.waitLine("handshakes on ", 5*time.Second); err != nil {
		return err
	}
	if h.bare, err = startProc("bare mTLS server", filepath.Join(h.root, "bare.log"), h.self, childBare, fakeDir); err != nil {
		return err
	}
	if h.bareURL, _, err = h.bare.waitLine("listening on ", 20*time.Second); err != nil {
		return err
	}
	fmt.Printf("fake CCP %s (admin %s), bare mTLS server %s\n", h.fakeURL, h.fakeAdmin, h.bareURL)

	caPEM, err := os.ReadFile(h.pki.CAFile)
	if err != nil {
		return err
	}
	app := h.pki.App
	h.direct, err = ccp.New(ccp.Options{Servers: []string{h.fakeURL}, CABundle: caPEM, PoolSize: poolSize},
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
	var ready time.Time
	if h.agent, h.socket, ready, err = h.startAgent(h.agentDir, "agent"); err != nil {
		return err
	}
	fmt.Printf("agent pid %d ready in %v on %s\n", h.agent.pid(), ready.Sub(h.agent.started).Round(time.Millisecond), h.socket)
	h.api = client.New(h.socket)
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
func (h *harness) startAgent(dir, name string) (*proc, string, time.Time, error) {
	if err := prepareAgentDir(dir); err != nil {
		return nil, "", time.Time{}, err
	}
	p, err := startProc(name, filepath.Join(h.root, name+".log"), filepath.Join(h.binDir, "credagent"), "run", "--dev", dir)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	sock, at, err := p.waitLine("credagent (dev) listening on ", 30*time.Second)
	if err != nil {
		p.stop(5 * time.Second)
		return nil, "", time.Time{}, err
	}
	return p, strings.TrimSpace(sock), at, nil
}

// portalSide makes deliveries for one dev agent, as credseal does.
type portalSide struct {
	signer    crypto.Signer
	machineID string
	pub       *ecdh.PublicKey
	inbox     string
	app       *delivery.Application
	seq       atomic.Uint64
}

func (h *harness) newPortal(agentDir string) (*portalSide, error) {
	cfg, err := daemon.DevConfig(agentDir)
	if err != nil {
		return nil, err
	}
	reg, pub, err := portal.LoadRegistration(filepath.Join(cfg.Paths.StateDir, daemon.DevRegistration))
	if err != nil {
		return nil, err
	}
	signer, err := portal.LoadSigningKey(filepath.Join(agentDir, daemon.DevSigningKeyFile))
	if err != nil {
		return nil, err
	}
	p12, err := os.ReadFile(h.pki.AppP12File)
	if err != nil {
		return nil, err
	}
	pfx, err := portal.OpenPFX(p12, secret.FromString(fakeccp.DevP12Password), time.Now(), 0)
	if err != nil {
		return nil, err
	}
	p := &portalSide{signer: signer, machineID: reg.MachineID, pub: pub, inbox: cfg.Paths.InboxDir, app: pfx.Application}
	p.seq.Store(uint64(time.Now().UnixMilli()))
	return p, nil
}

// make creates a signed delivery for target, sealed to the machine when its
// kind is secret.
func (p *portalSide) make(target string, c delivery.Content) (*delivery.Delivery, error) {
	h := delivery.Header{
		ID:      portal.NewID(),
		Target:  target,
		Seq:     p.seq.Add(1),
		Created: time.Now().UTC().Truncate(time.Second),
		To:      delivery.Machine(p.machineID),
	}
	var rcpt *ecdh.PublicKey
	if c.Kind().Sealed() {
		rcpt = p.pub
	}
	return delivery.Create(h, c, rcpt, p.signer)
}

func (p *portalSide) drop(target string, c delivery.Content) error {
	d, err := p.make(target, c)
	if err != nil {
		return fmt.Errorf("delivery %s: %w", target, err)
	}
	_, err = portal.Write(d, p.inbox, "")
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
	return c, getJSON(h.ctx, h.fakeAdmin+"/counters", &c)
}

// getJSON decodes the answer to GET url.
func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}
