package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// Names in the topology.
const (
	group     = "rpa-fleet"
	storeName = "rpa-prod"
	nAgents   = 3
)

// agentConfig is loaded over the dev defaults in each agent: fast failure
// detection, so that failover shows within the scenario, and a rate limit
// above what the load sends.
const agentConfig = `log:
  level: info
  format: json
inbox:
  rescan_interval: 1s
api:
  rate_per_second: 5000
  rate_burst: 5000
ccp:
  connect_timeout: 1s
  tls_timeout: 1s
  request_timeout: 1s
  retries: 2
  retry_backoff: 100ms
`

// Bounds the scenarios assert, derived from agentConfig.
const (
	attempts     = 3 // retries + 1
	slowBound    = attempts*time.Second + 2*time.Second
	serveWithin  = time.Second
	applyTimeout = 15 * time.Second
)

type env struct {
	topology
	portalKey string
	fronts    []string
	frontPEM  string // the fronts' client certificate and key (PEM)
	agents    []string
	agentDirs []string
	regs      []string // registration.json paths
	planted   []string // passwords
	keyFiles  []string // application and group private keys (PEM)
	sapSHA    string
}

func drive(args []string) error {
	fs := flag.NewFlagSet("drive", flag.ContinueOnError)
	e := &env{topology: newTopology("e2e")}
	e.flags(fs)
	keep := fs.Bool("keep", false, "keep the work directory")
	budget := fs.Duration("budget", 8*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop, err := e.start(*budget, *keep)
	if err != nil {
		return err
	}
	defer stop()
	rep := &report{start: time.Now()}
	if err := rep.step("setup: images, PKI, network, 2 CCP replicas, 3 agents, enrolment, deliveries", func() (string, error) { return e.setup(ctx) }); err != nil {
		rep.step("secrets in logs and state", func() (string, error) { return e.scanSecrets(ctx) })
		rep.result()
		return errors.New("setup failed")
	}
	rep.steps(ctx, []step{
		{"resolve from every agent", e.scResolveAll},
		{"rotate the application certificate by delivery under load", e.scRotateApp},
		{"stop a CCP replica, cut it from the network, restore it, under load", e.scFailover},
		{"rotate a password in the fake, see it on the next resolve", e.scRotatePassword},
		{"CCP slow and 5xx: bounded latency, right error class", e.scSlow5xx},
		{"bad deliveries dropped into one agent", e.scBadDelivery},
		{"kill and restart an agent under load", e.scKillRestart},
		{"IIS-like Apache fronts: TLS 1.2 renegotiation, and TLS 1.3 with a late certificate request", e.scFronts},
	})
	rep.step("secrets in logs and state", func() (string, error) { return e.scanSecrets(ctx) })
	return rep.result()
}

func (e *env) sh(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(e.bin, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (e *env) setup(ctx context.Context) (string, error) {
	// The dev PKI, made once on the host, with the replicas' names, and a
	// second DemoApp certificate for the rotation, authorised too.
	ccpDir, fix, err := e.preparePKI(ctx, "ccp1", "ccp2", "front1", "front2")
	if err != nil {
		return "", err
	}
	_, keyPEM, err := fakeccp.EncodePEM(e.app2)
	if err != nil {
		return "", err
	}
	app2Key := filepath.Join(e.work, "pki", "app2.key")
	if err := os.WriteFile(app2Key, keyPEM, 0o600); err != nil {
		return "", err
	}
	// The IIS-like fronts' own certificate, which the replicas trust to
	// pass the client certificate in a header (scFronts).
	if err := e.frontIdentity(ccpDir); err != nil {
		return "", err
	}
	// Every password the replicas serve is a needle for the secret scan.
	parsed, err := fakeccp.ParseFixture("fixture.yaml", fix)
	if err != nil {
		return "", err
	}
	e.planted = append(e.planted, parsed.Passwords()...)
	e.keyFiles = []string{e.pki.AppKeyFile, app2Key}
	e.sapSHA = sha("Sap-Pr0d!pass")

	// The portal's signing key, pinned by every agent.
	portalDir := filepath.Join(e.work, "portal")
	os.MkdirAll(portalDir, 0o700)
	if _, err := e.sh("credseal", "keygen", "--out", filepath.Join(portalDir, "signing")); err != nil {
		return "", err
	}
	e.portalKey = filepath.Join(portalDir, "signing.key")
	os.WriteFile(filepath.Join(portalDir, "p12.pass"), []byte(fakeccp.DevP12Password), 0o600)

	if err := e.network(ctx); err != nil {
		return "", err
	}
	for i := 1; i <= 2; i++ {
		// The fronts pass the client certificate in a header signed by
		// front.crt (scFronts).
		if err := e.startCCP(ctx, i, ccpDir, "--front-cert", "/ccp/front.crt"); err != nil {
			return "", err
		}
	}
	for i := 1; i <= nAgents; i++ {
		name := e.name(fmt.Sprintf("agent%d", i))
		dir := filepath.Join(e.work, "agents", fmt.Sprintf("agent%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		for _, f := range [][2]string{{"signing.key", daemon.DevSigningKeyFile}, {"signing.pub", daemon.DevSigningPubFile}} {
			b, _ := os.ReadFile(filepath.Join(portalDir, f[0]))
			os.WriteFile(filepath.Join(dir, f[1]), b, 0o600)
		}
		os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(agentConfig), 0o600)
		if _, err := docker(ctx, "run", "-d", "--name", name, "--hostname", fmt.Sprintf("agent%d", i), "--network", e.net,
			"--label", e.label(), "-v", dir+":/agent", e.agentImage); err != nil {
			return "", err
		}
		e.agents, e.agentDirs = append(e.agents, name), append(e.agentDirs, dir)
		e.regs = append(e.regs, filepath.Join(dir, "state", daemon.DevRegistration))
	}
	for i := range e.agents {
		if err := e.waitAgent(ctx, i, 30*time.Second); err != nil {
			return "", err
		}
	}
	for _, c := range e.ccps {
		if err := e.waitCCP(ctx, c, 30*time.Second); err != nil {
			return "", err
		}
	}

	// Enrolment done (each agent wrote its registration); now the portal:
	// the group key sealed to each machine, then the application sealed
	// once to the group key, the store to the group, and per machine
	// credentials.
	gk := filepath.Join(e.work, "group", "group.key")
	os.MkdirAll(filepath.Dir(gk), 0o700)
	e.keyFiles = append(e.keyFiles, gk)
	for i := range e.agents {
		args := []string{"group-key", "--key", gk, "--group", group, "--to", e.regs[i], "--sign", e.portalKey, "--inbox", e.inbox(i)}
		if i == 0 {
			args = append(args, "--new")
		}
		if _, err := e.sh("credseal", args...); err != nil {
			return "", err
		}
	}
	for i := range e.agents {
		if err := e.waitInboxEmpty(i, applyTimeout); err != nil {
			return "", err
		}
	}
	if err := e.deliverApp(e.pki.AppP12File); err != nil {
		return "", err
	}
	storeFile := filepath.Join(e.work, "out", "store.delivery")
	if _, err := e.sh("credseal", "store", "--group", group, "--name", storeName, "--server", "https://ccp1:8443", "--server", "https://ccp2:8443",
		"--app-id", "DemoApp", "--safe", "RPA-Prod", "--folder", "Root", "--ca-bundle", e.pki.CAFile, "--sign", e.portalKey, "--out", storeFile); err != nil {
		return "", err
	}
	if err := e.dropAll(storeFile); err != nil {
		return "", err
	}
	for i := range e.agents {
		for _, c := range [][2]string{{"sap", "sap-prod-admin"}, {"rpa01", "Operating System-WinDomain-example.internal-rpa01"}} {
			if _, err := e.sh("credseal", "credential", "--name", c[0], "--store", storeName, "--object", c[1], "--to", e.regs[i], "--sign", e.portalKey, "--inbox", e.inbox(i)); err != nil {
				return "", err
			}
		}
	}
	for i := range e.agents {
		if err := e.waitApplied(ctx, i, func(s *apitype.Status) bool {
			return s.Ready && len(s.Credentials) == 2 && len(s.Applications) == 1 && len(s.Stores) == 1
		}); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d agents ready with 1 group-sealed application, 1 group store (2 servers), 2 credentials each", nAgents), nil
}

func (e *env) inbox(i int) string { return filepath.Join(e.agentDirs[i], "inbox") }

// deliverApp seals the application in p12 once, to the group key, and
// drops the same file into every agent's inbox.
func (e *env) deliverApp(p12 string) error {
	out := filepath.Join(e.work, "out", fmt.Sprintf("app-%d.delivery", time.Now().UnixNano()))
	os.MkdirAll(filepath.Dir(out), 0o700)
	if _, err := e.sh("credseal", "app", "--p12", p12, "--password-file", filepath.Join(e.work, "portal", "p12.pass"), "--app-id", "DemoApp",
		"--group", group, "--group-key", filepath.Join(e.work, "group", "group.pub"), "--sign", e.portalKey, "--out", out); err != nil {
		return err
	}
	return e.dropAll(out)
}

// dropAll copies one delivery file into every inbox, atomically.
func (e *env) dropAll(file string) error {
	for i := range e.agents {
		if err := e.drop(i, file, ""); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) drop(i int, file, name string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if name == "" {
		name = filepath.Base(file)
	}
	return dropFile(e.inbox(i), name, b)
}

func (e *env) waitInboxEmpty(i int, within time.Duration) error {
	return waitInboxEmpty(e.inbox(i), e.agents[i], within)
}

// waitInboxEmpty waits until the agent who has taken in (applied or
// refused) every delivery of inbox.
func waitInboxEmpty(inbox, who string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		left, _ := filepath.Glob(filepath.Join(inbox, "*.delivery"))
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d deliveries not taken in within %v", who, len(left), within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) status(ctx context.Context, i int) (*apitype.Status, error) {
	var s apitype.Status
	if err := execJSON(ctx, e.agents[i], &s, "status"); err != nil {
		return nil, err
	}
	return &s, nil
}

// waitApplied polls agent i's status until ok, and fails on any rejection.
func (e *env) waitApplied(ctx context.Context, i int, ok func(*apitype.Status) bool) error {
	deadline := time.Now().Add(applyTimeout)
	for {
		s, err := e.status(ctx, i)
		if err == nil && len(s.Rejected) > 0 {
			return fmt.Errorf("%s rejected %s: %s", e.agents[i], s.Rejected[0].File, s.Rejected[0].Reason)
		}
		if err == nil && ok(s) {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("ready %v, problems %q", s.Ready, s.Problems)
			}
			return fmt.Errorf("%s: not in the expected state within %v: %v", e.agents[i], applyTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) waitAgent(ctx context.Context, i int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Stat(e.regs[i]); err == nil {
			if _, err := e.status(ctx, i); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			logs, _ := docker(ctx, "logs", "--tail", "20", e.agents[i])
			return fmt.Errorf("%s did not start within %v: %s", e.agents[i], within, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) waitCCP(ctx context.Context, c string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if ip := containerIP(ctx, c, e.net); ip != "" {
			if resp, err := e.http.Get("http://" + ip + ":8444/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			logs, _ := docker(ctx, "logs", "--tail", "20", c)
			return fmt.Errorf("%s not healthy within %v: %s", c, within, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// admin calls the admin API of replica c.
func (e *env) admin(ctx context.Context, c, method, path string, body any) ([]byte, error) {
	ip := containerIP(ctx, c, e.net)
	if ip == "" {
		return nil, fmt.Errorf("%s has no address on %s", c, e.net)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+ip+":8444"+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s on %s: %s: %s", method, path, c, resp.Status, b)
	}
	return b, nil
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func randomPassword() string {
	var b [9]byte
	rand.Read(b[:])
	return "Rot8-" + hex.EncodeToString(b[:]) + "!"
}
