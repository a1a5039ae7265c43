package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// serviceLifecycle runs agent/cmd/credagent's TestServiceLifecycle elevated,
// so that the real credagent.exe is installed in Wine's SCM and run by its
// services.exe: install, start, status and resolve through the service's
// pipe, reload, stop, uninstall. Its steps are the test's subtests and
// verdict, under the package "(service)".
func (e *env) serviceLifecycle(st *steps) {
	pkgDir := filepath.Join(e.repo, "agent", "cmd", "credagent")
	exe := filepath.Join(e.work, "tests", "agent_cmd_credagent.test.exe")
	if _, err := os.Stat(exe); err != nil {
		os.MkdirAll(filepath.Dir(exe), 0o755)
		cmd := exec.Command("go", "test", "-c", "-o", exe, "./agent/cmd/credagent")
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			st.do("TestServiceLifecycle", func() error { return fmt.Errorf("building the test: %v: %s", err, out) })
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := e.wine(ctx, pkgDir, []string{"CREDAGENT_TEST_SERVICE=1", "CREDAGENT_TEST_EXE=" + winPath(e.bin("windows", "credagent.exe"))},
		e.bin("windows", "elevate.exe"), exe, "-test.run=^TestServiceLifecycle$", "-test.v", "-test.timeout=3m")
	// elevate.exe hands the CREDAGENT_ variables to the elevated process.
	out, runErr := combined(cmd)
	os.WriteFile(filepath.Join(e.work, "logs", "service.log"), out, 0o644)
	rs, _ := ParseTestV(bytes.NewReader(out))
	if len(rs) == 0 {
		st.do("TestServiceLifecycle", func() error {
			return fmt.Errorf("the test did not run (%v): %s", runErr, tail(out, 20))
		})
		return
	}
	for _, r := range rs {
		st.results = append(st.results, r)
		fmt.Printf("   %-4s %s %s\n", strings.ToLower(string(r.Outcome)), r.Name, r.Reason)
	}
	if runErr != nil && !bytes.Contains(out, []byte("--- FAIL")) {
		st.results = append(st.results, Result{Name: "TestServiceLifecycle", Outcome: Fail, Reason: runErr.Error()})
	}
}

// msi builds the MSI with wixl, as scripts/package.sh does, and installs and
// removes it with Wine's msiexec, elevated, with the documented properties
// (PORTALKEY, CONFIG); then checks the files, the service registration and
// the ProgramData folder, and that uninstalling removes the program and the
// service (the ProgramData folder, which holds the machine key and the
// config, stays, as the MSI's own files do not include it).
func (e *env) msi(st *steps) {
	dir := filepath.Join(e.work, "msi")
	os.MkdirAll(dir, 0o755)
	msiPath := filepath.Join(dir, "credagent-0.0.0-x64.msi")
	driveC := filepath.Join(e.root, "root", ".wine", "drive_c")
	progFile := filepath.Join(driveC, "Program Files", "credagent", "credagent.exe")
	dataDir := filepath.Join(driveC, "ProgramData", "credagent")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	elevate := e.bin("windows", "elevate.exe")
	// Each check looks at the machine by itself: run them all, so that a
	// failed install still says what did get installed.
	st.keepGoing = true

	st.do("build-msi-wixl", func() error {
		if _, err := exec.LookPath("wixl"); err != nil {
			return errors.New("wixl is missing (scripts/prereqs.sh installs msitools and wixl)")
		}
		// wixl wants BinDir and ModuleDir relative (to its working
		// directory): the PowerShell module is copied beside bin.
		module := filepath.Join(e.work, "module")
		os.RemoveAll(module)
		if err := os.CopyFS(module, os.DirFS(filepath.Join(e.repo, "installer", "windows", "CredAgent"))); err != nil {
			return fmt.Errorf("copying the PowerShell module: %v", err)
		}
		cmd := exec.Command("wixl", "-a", "x64", "-D", "Version=0.0.0", "-D", "BinDir=bin/windows", "-D", "ModuleDir=module",
			"-o", msiPath, filepath.Join(e.repo, "installer", "windows", "credagent.wxs"))
		cmd.Dir = e.work
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("wixl: %v: %s", err, out)
		}
		return nil
	})

	portalKey, config := "", filepath.Join(dir, "seed-config.yaml")
	st.do("msiexec-install", func() error {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		portalKey = base64.StdEncoding.EncodeToString(der)
		seed := "# seeded by the MSI test\npolicy:\n  rules:\n    - name: msi-seeded\n      sids: [S-1-5-32-544]\n      credentials: [\"*\"]\n"
		if err := os.WriteFile(config, []byte(seed), 0o644); err != nil {
			return err
		}
		out, err := combined(e.wine(ctx, dir, nil, elevate, "msiexec", "/i", winPath(msiPath), "/qn",
			"/l*v", winPath(filepath.Join(dir, "install.log")),
			"PORTALKEY="+portalKey, "CONFIG="+winPath(config)))
		if err != nil {
			return fmt.Errorf("msiexec /i: %v: %s (log: %s)", err, out, filepath.Join(dir, "install.log"))
		}
		return nil
	})
	st.do("program-installed", func() error {
		if _, err := os.Stat(progFile); err != nil {
			return err
		}
		return nil
	})
	st.do("powershell-module-installed", func() error {
		_, err := os.Stat(filepath.Join(driveC, "Program Files", "WindowsPowerShell", "Modules", "CredAgent", "CredAgent.psm1"))
		return err
	})
	st.do("service-registered", func() error {
		out, err := combined(e.wine(ctx, dir, nil, "reg", "query", `HKLM\SYSTEM\CurrentControlSet\Services\credagent`, "/v", "ImagePath"))
		if err != nil || !bytes.Contains(bytes.ToLower(out), []byte(`credagent.exe`)) || !bytes.Contains(out, []byte("run --config")) {
			return fmt.Errorf("the credagent service's ImagePath is not the installed program (%v): %s", err, out)
		}
		return nil
	})
	st.do("programdata-config-seeded", func() error {
		b, err := os.ReadFile(filepath.Join(dataDir, "config.yaml"))
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte("msi-seeded")) {
			return fmt.Errorf("%s is not the CONFIG the MSI was given", filepath.Join(dataDir, "config.yaml"))
		}
		if !bytes.Contains(b, []byte(portalKey[len(portalKey)-16:])) {
			return fmt.Errorf("%s does not pin the PORTALKEY the MSI was given", filepath.Join(dataDir, "config.yaml"))
		}
		return nil
	})
	st.do("msiexec-uninstall", func() error {
		out, err := combined(e.wine(ctx, dir, nil, elevate, "msiexec", "/x", winPath(msiPath), "/qn",
			"/l*v", winPath(filepath.Join(dir, "uninstall.log"))))
		if err != nil {
			return fmt.Errorf("msiexec /x: %v: %s (log: %s)", err, out, filepath.Join(dir, "uninstall.log"))
		}
		return nil
	})
	st.do("program-service-removed", func() error {
		if _, err := os.Stat(progFile); err == nil {
			return fmt.Errorf("%s is still there", progFile)
		}
		out, err := combined(e.wine(ctx, dir, nil, "reg", "query", `HKLM\SYSTEM\CurrentControlSet\Services\credagent`))
		if err == nil {
			return fmt.Errorf("the credagent service is still registered: %s", out)
		}
		return nil
	})
	st.do("programdata-kept", func() error {
		if _, err := os.Stat(filepath.Join(dataDir, "config.yaml")); err != nil {
			return fmt.Errorf("the config did not survive uninstalling: %w", err)
		}
		return nil
	})
}
