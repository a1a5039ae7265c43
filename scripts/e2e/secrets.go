package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/credagent/credagent/agent/secret/secrettest"
)

// needles are the planted passwords and every form of the private keys
// (secrettest.KeyNeedles: PEM, DER, base64 of the DER, the raw scalar).
func (e *env) needles() ([]secrettest.Needle, error) {
	var out []secrettest.Needle
	for _, p := range e.planted {
		out = append(out, secrettest.Password(p))
	}
	for _, f := range e.keyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: not PEM", f)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		ns, err := secrettest.KeyNeedles(filepath.Base(f), k)
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
	}
	return out, nil
}

// scanSecrets collects every container's logs, and the agents' state
// directories with docker cp, and looks for the needles in them.
func (e *env) scanSecrets(ctx context.Context) (string, error) {
	dir := filepath.Join(e.work, "collected")
	os.MkdirAll(dir, 0o700)
	ns, err := e.needles()
	if err != nil {
		return "", err
	}
	// Positive control: the scanner finds the keys in the portal's own
	// files, so an empty result below means something.
	for _, f := range e.keyFiles {
		b, _ := os.ReadFile(f)
		if len(secrettest.Find(b, ns)) == 0 {
			return "", fmt.Errorf("scanner self-check: nothing found in %s itself", filepath.Base(f))
		}
	}
	containers := append(append(append([]string{}, e.ccps...), e.fronts...), e.agents...)
	for _, c := range containers {
		out, err := dockerLogs(ctx, c)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, c+".log"), out, 0o600); err != nil {
			return "", err
		}
	}
	for _, c := range e.agents {
		if _, err := docker(ctx, "cp", c+":/agent", filepath.Join(dir, c+"-state")); err != nil {
			return "", err
		}
	}
	r, err := secrettest.ScanDir(dir, ns)
	if err != nil {
		return "", err
	}
	if len(r.Found) > 0 {
		return "", fmt.Errorf("secrets found: %s", strings.Join(r.Found, "; "))
	}
	return fmt.Sprintf("%d needles (%d passwords, %d private keys in PEM/DER/base64/raw forms) absent from %d files, %d KiB of logs and state of %d containers",
		len(ns), len(e.planted), len(e.keyFiles), r.Files, r.Bytes/1024, len(containers)), nil
}

// dockerLogs returns standard output and standard error of c's logs.
func dockerLogs(ctx context.Context, c string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", "logs", c)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker logs %s: %v", c, err)
	}
	return b.Bytes(), nil
}
