package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/scripts/internal/rig"
	"go.yaml.in/yaml/v3"
)

// The account the callers resolve, from the dev fixture, and the subject
// by which the fake knows the application's certificates (each rotation
// mints a new one with a new serial, so the fake cannot list serials).
const (
	appID       = "DemoApp"
	safe        = "RPA-Prod"
	sapObject   = "sap-prod-admin"
	rpaObject   = "Operating System-WinDomain-example.internal-rpa01"
	storeName   = "prod"
	appSubject  = "credagent soak app"
	socketGroup = "credsoak"
)

// The OS users of the callers: two the policy admits, one it refuses.
var soakUsers = []string{"credsoak1", "credsoak2", "credsoak3"}

// replica is one fake CCP process, restarted on the same ports.
type replica struct {
	name       string
	addr       string // 127.0.0.1:port of the Accounts API
	adminAddr  string
	url, admin string
	proc       *rig.Proc
}

// setupWorld makes the PKI, the users, the fakes and the agent, and gives
// the agent its application, store and credentials.
func (s *soak) setupWorld() error {
	var err error
	ccpDir := filepath.Join(s.root, "ccp")
	if s.pki, err = fakeccp.EnsureDevPKI(ccpDir); err != nil {
		return err
	}
	if s.caPEM, err = os.ReadFile(s.pki.CAFile); err != nil {
		return err
	}
	if s.fixture, err = s.pki.Fixture(); err != nil {
		return err
	}
	for i := range s.fixture.Applications {
		if s.fixture.Applications[i].AppID == appID {
			s.fixture.Applications[i].Authentication = fakeccp.Authentication{
				CertificateAttributes: &fakeccp.CertificateAttributes{Subject: []string{"CN=" + appSubject}},
			}
		}
	}
	s.fixtureFile = filepath.Join(ccpDir, "soak-fixture.yaml")
	s.password = "Soak-0!pass"
	s.passwords = append(s.passwords, s.password)
	if err := s.writeFixture(); err != nil {
		return err
	}

	if err := s.setupUsers(); err != nil {
		return err
	}

	for i, n := range []string{"ccp-a", "ccp-b"} {
		r := &replica{name: n}
		if r.addr, err = rig.FreeLoopbackAddr(); err != nil {
			return err
		}
		if r.adminAddr, err = rig.FreeLoopbackAddr(); err != nil {
			return err
		}
		r.url, r.admin = "https://"+r.addr, "http://"+r.adminAddr
		s.replicas[i] = r
		if err := s.startReplica(r); err != nil {
			return err
		}
		s.ccpPorts = append(s.ccpPorts, r.addr[strings.LastIndexByte(r.addr, ':')+1:])
	}
	fmt.Printf("fake CCP replicas %s and %s\n", s.replicas[0].url, s.replicas[1].url)

	if err := s.startFeed(); err != nil {
		return err
	}
	if err := s.startAgent(); err != nil {
		return err
	}
	reg := filepath.Join(s.stateDir, enroll.FileName)
	if s.portal, err = agenttest.LoadPortal(s.signingKeyFile, reg, s.inboxDir); err != nil {
		return err
	}
	if fi, err := os.Stat(reg); err == nil {
		s.regBytes = fi.Size()
	}
	if err := s.feed.ready(s.ctx); err != nil {
		return fmt.Errorf("feed: %w; see %s", err, s.agentLog)
	}
	if err := s.rotateCert(); err != nil {
		return err
	}
	if err := s.deliverStore([]string{s.replicas[0].url, s.replicas[1].url}); err != nil {
		return err
	}
	// The first store delivery, superseded at the first re-delivery: the
	// replay the agent must refuse.
	s.oldDelivery = s.currentStore
	for name, obj := range map[string]string{"sap": sapObject, "rpa01": rpaObject} {
		if _, err := s.drop(name, &delivery.Credential{Store: storeName, Object: obj}); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		pw, err := s.resolveSap(s.ctx)
		if err == nil && pw == s.currentPassword() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent did not resolve sap after the deliveries: %v; see %s", err, s.agentLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeFixture writes the fixture with the current password, which a
// replica reads when it starts. Called with ccpMu held or before the run.
func (s *soak) writeFixture() error {
	for i := range s.fixture.Safes {
		for j := range s.fixture.Safes[i].Accounts {
			if a := &s.fixture.Safes[i].Accounts[j]; a.Name == sapObject {
				a.Password = s.password
			}
		}
	}
	b, err := yaml.Marshal(s.fixture)
	if err != nil {
		return err
	}
	tmp := s.fixtureFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.fixtureFile)
}

func (s *soak) currentPassword() string {
	s.ccpMu.Lock()
	defer s.ccpMu.Unlock()
	return s.password
}

// startReplica starts bin/fakeccp serve on the replica's ports.
func (s *soak) startReplica(r *replica) error {
	p, err := rig.StartProc(r.name, filepath.Join(s.root, r.name+".log"), filepath.Join(s.binDir, "fakeccp"), "serve",
		"--config", s.fixtureFile, "--tls-cert", s.pki.ServerCertFile, "--tls-key", s.pki.ServerKeyFile, "--client-ca", s.pki.CAFile,
		"--listen", r.addr, "--admin", r.adminAddr, "--log-level", "warn")
	if err != nil {
		return err
	}
	if _, _, err := p.WaitLine("admin on ", 15*time.Second); err != nil {
		p.Stop(time.Second)
		return err
	}
	r.proc = p
	return nil
}

// setupUsers makes sure the callers' users and the socket group exist
// (as root), remembering what it created so that cleanup removes it.
// Without root every caller runs as the current user.
func (s *soak) setupUsers() error {
	if os.Geteuid() != 0 {
		s.note("not root: every caller runs as the current user, and the caller the policy refuses is left out")
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			return err
		}
		s.group = g.Name
		return nil
	}
	s.group = socketGroup
	if _, err := user.LookupGroup(socketGroup); err != nil {
		if out, err := exec.Command("groupadd", "--system", socketGroup).CombinedOutput(); err != nil {
			return fmt.Errorf("groupadd %s: %v: %s", socketGroup, err, out)
		}
		s.createdGroup = true
	}
	for _, n := range soakUsers {
		if _, err := user.Lookup(n); err != nil {
			out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--gid", socketGroup, n).CombinedOutput()
			if err != nil {
				return fmt.Errorf("useradd %s: %v: %s", n, err, out)
			}
			s.createdUsers = append(s.createdUsers, n)
		}
	}
	return nil
}

// removeUsers removes the users and the group setupUsers created.
func (s *soak) removeUsers() {
	for _, n := range s.createdUsers {
		if out, err := exec.Command("userdel", n).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "soak: userdel %s: %v: %s\n", n, err, out)
		}
	}
	if s.createdGroup {
		if out, err := exec.Command("groupdel", socketGroup).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "soak: groupdel %s: %v: %s\n", socketGroup, err, out)
		}
	}
}

// credential returns the uid and gid of a soak user.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// agentConfigTemplate is the agent's config file. The callers' rate limit
// is lifted (the soak is one machine's whole fleet of runners); Burst
// changes at each reload so that every reload changes something.
var agentConfigTemplate = template.Must(template.New("config").Parse(`# written by scripts/soak
machine_id: soak-machine
paths:
  state_dir: {{.Root}}/agent/state
  inbox_dir: {{.Root}}/agent/inbox
  socket: {{.Root}}/run/agent.sock
log:
  level: info
  format: json
  file: {{.Root}}/agent.log
  audit_file: {{.Root}}/audit.log
  max_size_mb: 5
  max_files: 2
keystore:
  backend: file
  dir: {{.Root}}/agent/keys
portal:
  signing_keys:
    - |
{{.SigningKey}}
api:
  socket_group: {{.Group}}
  rate_per_second: 100000
  rate_burst: {{.Burst}}
ccp:
  connect_timeout: 2s
  request_timeout: 10s
  retries: 2
  retry_backoff: 50ms
feed:
  urls: [{{.FeedURL}}]
  ca_file: {{.FeedCA}}
  poll_interval: {{.FeedPoll}}
  timeout: {{.FeedTimeout}}
  max_manifest_bytes: {{.FeedMax}}
policy:
  rules:
{{- if .AsRoot}}
    - name: soak-root
      uids: [0]
      credentials: ["*"]
    - name: soak-runner-1
      users: [credsoak1]
      credentials: [sap, rpa01]
    - name: soak-runner-2
      users: [credsoak2]
      credentials: [sap, rpa01]
      operations: [resolve, check]
{{- else}}
    - name: soak-self
      uids: [{{.UID}}]
      credentials: ["*"]
{{- end}}
{{.Bad}}`))

// writeConfig writes the agent's config file; bad adds an unknown key,
// which the agent must refuse at reload, keeping the running config.
func (s *soak) writeConfig(bad bool) error {
	s.reloadSeq++
	var b bytes.Buffer
	indented := "      " + strings.ReplaceAll(strings.TrimSpace(s.signingPub), "\n", "\n      ")
	badLine := ""
	if bad {
		badLine = "surprise_key: this key does not exist\n"
	}
	err := agentConfigTemplate.Execute(&b, map[string]any{
		"Root": s.root, "SigningKey": indented, "Group": s.group, "Burst": 100000 + s.reloadSeq%2,
		"AsRoot": os.Geteuid() == 0, "UID": os.Getuid(), "Bad": badLine,
		"FeedURL": s.feed.url, "FeedCA": s.feed.caFile, "FeedPoll": s.feedPoll(), "FeedTimeout": feedTimeout, "FeedMax": feedMaxBytes,
	})
	if err != nil {
		return err
	}
	tmp := s.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.cfgPath)
}

// startAgent writes the portal's signing key and the config, and starts
// bin/credagent run --config as the service would, then waits until its
// socket answers.
func (s *soak) startAgent() error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	s.signingKeyFile = filepath.Join(s.root, "portal-signing.key")
	if err := os.WriteFile(s.signingKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	s.signingPub = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	s.cfgPath = filepath.Join(s.root, "credagent.yaml")
	if err := s.writeConfig(false); err != nil {
		return err
	}
	s.stateDir = filepath.Join(s.root, "agent", "state")
	s.inboxDir = filepath.Join(s.root, "agent", "inbox")
	s.socket = filepath.Join(s.root, "run", "agent.sock")
	s.agentLog = filepath.Join(s.root, "agent.log")
	if s.agent, err = rig.StartProc("agent", filepath.Join(s.root, "agent.stderr"), filepath.Join(s.binDir, "credagent"), "run", "--config", s.cfgPath); err != nil {
		return err
	}
	s.api = client.New(s.socket)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(s.ctx, time.Second)
		_, err := s.api.Status(ctx)
		cancel()
		if err == nil {
			fmt.Printf("agent pid %d on %s\n", s.agent.Pid(), s.socket)
			return nil
		}
		select {
		case <-s.agent.Done():
			return fmt.Errorf("the agent exited; see %s and %s", s.agent.LogPath, s.agentLog)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent's socket did not answer within 30 s: %v; see %s", err, s.agentLog)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// drop makes and drops a delivery and remembers its size as the record the
// state directory must hold for target.
func (s *soak) drop(target string, c delivery.Content) (*delivery.Delivery, error) {
	d, err := s.portal.Drop(target, c)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.recordBytes[string(d.Kind)+"/"+target] = int64(len(d.Marshal()))
	s.mu.Unlock()
	return d, nil
}

// newAppCert mints a new application certificate, valid for a year (so
// that the agent's expiry warning stays quiet), as an application delivery's
// content, with its serial as status shows it.
func (s *soak) newAppCert() (*delivery.Application, string, error) {
	c, err := s.pki.MintClientCert(fakeccp.ClientCertOptions{CommonName: appSubject, NotAfter: time.Now().Add(365 * 24 * time.Hour)})
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, "", err
	}
	return &delivery.Application{Chain: c.Certificate, PrivateKey: secret.New(der)}, c.Leaf.SerialNumber.Text(16), nil
}

// rotateCert mints a new application certificate and drops it into the
// inbox.
func (s *soak) rotateCert() error {
	app, _, err := s.newAppCert()
	if err != nil {
		return err
	}
	_, err = s.drop(appID, app)
	return err
}

// rotateCertEvent rotates the application certificate by delivery, in
// turn through the inbox and through the feed (feedRotateCert), one at a
// time, so that a rotation through the inbox never overtakes one through
// the feed before the agent has polled.
func (s *soak) rotateCertEvent(ctx context.Context) error {
	s.mu.Lock()
	s.events["certificate turn"]++
	viaFeed := s.events["certificate turn"]%2 == 0
	s.mu.Unlock()
	if viaFeed {
		return s.feedRotateCert(ctx)
	}
	return s.rotateCert()
}

func (s *soak) deliverStore(servers []string) error {
	d, err := s.drop(storeName, &delivery.Store{DisplayName: "soak", Servers: servers, AppID: appID, Safe: safe, Folder: "Root", CABundle: string(s.caPEM)})
	if err == nil {
		s.mu.Lock()
		s.currentStore = d.Marshal()
		s.mu.Unlock()
	}
	return err
}

// resolveSap resolves sap as root through the agent and returns the
// password.
func (s *soak) resolveSap(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := s.api.Resolve(ctx, "soak-verify", "soak", "sap")
	if err != nil {
		return "", err
	}
	defer res.Wipe()
	cr := res.Get("sap")
	if cr == nil {
		return "", errors.New("no answer for sap")
	}
	if cr.Err != nil {
		return "", cr.Err
	}
	return cr.Password.RevealString(), nil
}

// admin sends a request to a replica's admin API.
func (s *soak) admin(ctx context.Context, r *replica, method, path string, body any) error {
	if _, err := rig.Call(ctx, method, r.admin+path, body); err != nil {
		return fmt.Errorf("replica %s: %w", r.name, err)
	}
	return nil
}

// directCert is a certificate of the application for the harness's own
// CCP client, the latency baseline.
func (s *soak) directCert() (*tls.Certificate, error) {
	c, err := s.pki.MintClientCert(fakeccp.ClientCertOptions{CommonName: appSubject})
	return &c, err
}
