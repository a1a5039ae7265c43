package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// needle is one secret form to look for.
type needle struct {
	what string
	b    []byte
}

// needles are the planted passwords and every form of the private keys:
// PEM, DER, base64 of the DER, and the raw scalar in binary, hex and base64.
func (e *env) needles() ([]needle, error) {
	var out []needle
	for _, p := range e.planted {
		out = append(out, needle{"password " + p[:4] + "...", []byte(p)})
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
		name := filepath.Base(f)
		body := strings.TrimSpace(string(b))
		lines := strings.Split(body, "\n")
		out = append(out,
			needle{name + " (PEM)", []byte(body)},
			needle{name + " (PEM body line)", []byte(lines[1])},
			needle{name + " (DER)", blk.Bytes},
			needle{name + " (base64 DER)", []byte(base64.StdEncoding.EncodeToString(blk.Bytes))},
			needle{name + " (base64url DER)", []byte(base64.RawURLEncoding.EncodeToString(blk.Bytes))},
		)
		var scalar []byte
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			scalar = k.D.FillBytes(make([]byte, 32))
		case *ecdh.PrivateKey:
			scalar = k.Bytes()
		}
		if scalar != nil {
			out = append(out,
				needle{name + " (raw scalar)", scalar},
				needle{name + " (hex scalar)", []byte(hex.EncodeToString(scalar))},
				needle{name + " (base64 scalar)", []byte(base64.StdEncoding.EncodeToString(scalar))},
				needle{name + " (base64url scalar)", []byte(base64.RawURLEncoding.EncodeToString(scalar))},
			)
		}
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
		hit := false
		for _, n := range ns {
			hit = hit || bytes.Contains(b, n.b)
		}
		if !hit {
			return "", fmt.Errorf("scanner self-check: nothing found in %s itself", filepath.Base(f))
		}
	}
	containers := append(append([]string{}, e.ccps...), e.agents...)
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
	files, bytesScanned := 0, 0
	var found []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		bytesScanned += len(b)
		for _, n := range ns {
			if bytes.Contains(b, n.b) {
				rel, _ := filepath.Rel(dir, p)
				found = append(found, n.what+" in "+rel)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(found) > 0 {
		return "", fmt.Errorf("secrets found: %s", strings.Join(found, "; "))
	}
	return fmt.Sprintf("%d needles (%d passwords, %d private keys in PEM/DER/base64/raw forms) absent from %d files, %d KiB of logs and state of %d containers",
		len(ns), len(e.planted), len(e.keyFiles), files, bytesScanned/1024, len(containers)), nil
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
