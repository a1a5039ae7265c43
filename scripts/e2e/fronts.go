package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp/apachefront"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// The IIS-like fronts run Debian's Apache (installed on this machine by
// scripts/prereqs.sh) inside the e2e network: a container of the fake's
// FROM scratch image with the host's /usr mounted read-only and httpd as
// its entrypoint, as an unprivileged user. No image with Apache has to be
// built, and the agents reach the fronts by name as they reach the
// replicas.

// frontIdentity mints the fronts' client certificate towards the replicas
// and puts its certificate where the replicas read it (front.crt).
func (e *env) frontIdentity(ccpDir string) error {
	dir := filepath.Join(e.work, "front-id")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, pemFile, err := apachefront.FrontIdentity(e.pki, dir)
	if err != nil {
		return err
	}
	e.frontPEM = pemFile
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate.Raw})
	return os.WriteFile(filepath.Join(ccpDir, "front.crt"), crt, 0o644)
}

// startFront runs one front named alias in mode, before replica ccp1.
func (e *env) startFront(ctx context.Context, alias string, mode apachefront.Mode) error {
	dir := filepath.Join(e.work, alias)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	os.Chmod(dir, 0o777) // httpd runs as www-data (33) and writes its logs here
	for src, dst := range map[string]string{e.pki.ServerCertFile: "server.crt", e.pki.ServerKeyFile: "server.key",
		e.pki.CAFile: "ca.pem", e.frontPEM: "front-client.pem"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			return err
		}
	}
	conf, err := apachefront.Render(apachefront.Config{
		Dir: "/front", Addr: "0.0.0.0", Port: 8443, Protocols: apachefront.ProtocolsFor(mode),
		ServerCert: "/front/server.crt", ServerKey: "/front/server.key", ClientCA: "/front/ca.pem", BackendCA: "/front/ca.pem",
		ProxyCert: "/front/front-client.pem", Backend: "https://ccp1:8443",
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "front.conf"), conf, 0o644); err != nil {
		return err
	}
	name := e.name(alias)
	if _, err := docker(ctx, "run", "-d", "--name", name, "--hostname", alias, "--network", e.net, "--network-alias", alias,
		"--label", e.label(), "--user", "33:33",
		"-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro", "-v", dir+":/front",
		"--entrypoint", apachefront.Binary, e.ccpImage, "-f", "/front/front.conf", "-DFOREGROUND"); err != nil {
		return err
	}
	e.fronts = append(e.fronts, name)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ip := containerIP(ctx, name, e.net); ip != "" {
			if c, err := net.DialTimeout("tcp", ip+":8443", time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			logs, _ := docker(ctx, "logs", "--tail", "20", name)
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return fmt.Errorf("%s did not listen within 20s: %s %s", name, logs, errLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scFronts: agent1 gets two more stores, one behind each front, and
// resolves through both with its default CCP settings. Through the TLS 1.2
// front the certificate is asked for by renegotiation; through the TLS 1.3
// one, after the handshake, so the agent falls back to TLS 1.2 once and
// says so once.
func (e *env) scFronts(ctx context.Context) (string, error) {
	if !apachefront.Available() {
		return "", fmt.Errorf("apache2 is not installed on this machine (scripts/prereqs.sh installs it)")
	}
	for _, f := range []struct {
		alias string
		mode  apachefront.Mode
	}{{"front1", apachefront.Renegotiate}, {"front2", apachefront.PostHandshake}} {
		if err := e.startFront(ctx, f.alias, f.mode); err != nil {
			return "", err
		}
	}
	for _, st := range [][2]string{{"front12", "https://front1:8443"}, {"front13", "https://front2:8443"}} {
		out := filepath.Join(e.work, "out", st[0]+".delivery")
		if _, err := e.sh("credseal", "store", "--to", e.regs[0], "--name", st[0], "--server", st[1], "--app-id", "DemoApp",
			"--safe", "RPA-Prod", "--ca-bundle", e.pki.CAFile, "--sign", e.portalKey, "--out", out); err != nil {
			return "", err
		}
		if err := e.drop(0, out, ""); err != nil {
			return "", err
		}
		if _, err := e.sh("credseal", "credential", "--name", "sap-"+st[0], "--store", st[0], "--object", "sap-prod-admin",
			"--to", e.regs[0], "--sign", e.portalKey, "--inbox", e.inbox(0)); err != nil {
			return "", err
		}
	}
	if err := e.waitApplied(ctx, 0, func(s *apitype.Status) bool { return len(s.Stores) == 3 && len(s.Credentials) == 4 }); err != nil {
		return "", err
	}
	var took []string
	for _, name := range []string{"sap-front12", "sap-front13"} {
		for range 3 {
			var r ResolveResult
			if err := execJSON(ctx, e.agents[0], &r, "resolve", "--name", name); err != nil {
				return "", err
			}
			if !r.OK {
				return "", fmt.Errorf("%s: %s %s: %s", name, r.Class, r.Code, r.Message)
			}
			if r.SHA256 != e.sapSHA {
				return "", fmt.Errorf("%s: wrong password", name)
			}
			took = append(took, fmt.Sprintf("%.0fms", r.TookMS))
		}
	}
	logs, err := dockerLogs(ctx, e.agents[0])
	if err != nil {
		return "", err
	}
	if n := strings.Count(string(logs), "after the TLS 1.3 handshake"); n != 1 {
		return "", fmt.Errorf("agent1 logged the TLS 1.2 fallback %d times, want once", n)
	}
	access, _ := os.ReadFile(filepath.Join(e.work, "front1", "access.log"))
	if !strings.Contains(string(access), " 200 TLSv1.2 ") {
		return "", fmt.Errorf("front1's access log shows no TLS 1.2 request with a client certificate: %s", access)
	}
	return "3+3 resolutions through front1 (renegotiation) and front2 (TLS 1.3, fell back once), right passwords, " + strings.Join(took, " "), nil
}
