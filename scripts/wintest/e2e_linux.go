package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/secret/secrettest"
)

// devEndToEnd is scripts/demo.sh under Wine: the native fake CCP, the
// Windows agent in dev mode, credseal.exe delivering to its inbox, then
// check, status and resolve through the agent's named pipe. At the end every
// file the agent wrote, and every file written inside the root, is scanned
// for the fake CCP's passwords.
func (e *env) devEndToEnd(st *steps) {
	dir := filepath.Join(e.work, "e2e")
	ccpDir, agentDir := filepath.Join(dir, "ccp"), filepath.Join(dir, "agent")
	os.MkdirAll(ccpDir, 0o700)
	os.MkdirAll(agentDir, 0o700)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	credagent := e.bin("windows", "credagent.exe")
	credseal := e.bin("windows", "credseal.exe")
	agentWin := winPath(agentDir)

	var ccpURL string
	var stopCCP func()
	defer func() {
		if stopCCP != nil {
			stopCCP()
		}
	}()
	st.do("fakeccp-dev-native", func() error {
		out, stop, err := start(ctx, exec.Command(e.bin("linux", "fakeccp"), "dev", "--dir", ccpDir, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"), filepath.Join(dir, "fakeccp"))
		stopCCP = stop
		if err != nil {
			return err
		}
		line, err := waitFor(ctx, out, regexp.MustCompile(`^listening on (https://\S+)`), 20*time.Second)
		if err != nil {
			return fmt.Errorf("the fake CCP did not start: %w", err)
		}
		ccpURL = line[1]
		return nil
	})

	var stopAgent func()
	st.do("agent-run-dev", func() error {
		out, stop, err := start(ctx, e.wine(ctx, dir, nil, credagent, "run", "--dev", agentWin), filepath.Join(dir, "agent"))
		stopAgent = stop
		if err != nil {
			return err
		}
		if _, err := waitFor(ctx, out, regexp.MustCompile(`listening on`), 60*time.Second); err != nil {
			return fmt.Errorf("the agent did not start: %w (see %s)", err, filepath.Join(dir, "agent.log"))
		}
		if _, err := os.Stat(filepath.Join(agentDir, "state", "registration.json")); err != nil {
			return fmt.Errorf("no registration document: %w", err)
		}
		return nil
	})

	st.do("credseal-deliveries", func() error {
		if err := os.WriteFile(filepath.Join(dir, "p12.pass"), []byte("changeit"), 0o600); err != nil {
			return err
		}
		reg, sign, inbox := agentWin+`\state\registration.json`, agentWin+`\portal-signing.key`, agentWin+`\inbox`
		ccpWin := winPath(ccpDir)
		for _, args := range [][]string{
			{"app", "--p12", ccpWin + `\app.p12`, "--password-file", winPath(filepath.Join(dir, "p12.pass")), "--app-id", "DemoApp"},
			{"store", "--name", "rpa-prod", "--server", ccpURL, "--app-id", "DemoApp", "--safe", "RPA-Prod", "--folder", "Root", "--ca-bundle", ccpWin + `\ca.pem`},
			{"credential", "--name", "sap-prod-admin", "--store", "rpa-prod", "--object", "sap-prod-admin"},
		} {
			args = append(args, "--to", reg, "--sign", sign, "--inbox", inbox)
			if out, err := combined(e.wine(ctx, dir, nil, credseal, args...)); err != nil {
				return fmt.Errorf("credseal %s: %v: %s", args[0], err, out)
			}
		}
		return nil
	})

	st.do("check-applied", func() error {
		var out []byte
		var err error
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if out, err = combined(e.wine(ctx, dir, nil, credagent, "check", "--dev", agentWin, "sap-prod-admin")); err == nil {
				return nil
			}
		}
		return fmt.Errorf("check sap-prod-admin: %v: %s", err, out)
	})

	st.do("status-over-pipe", func() error {
		out, err := combined(e.wine(ctx, dir, nil, credagent, "status", "--dev", agentWin))
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})

	fix, fixErr := fakeccp.LoadFixture(filepath.Join(ccpDir, fakeccp.DevFixtureFile))
	st.do("resolve-over-pipe", func() error {
		if fixErr != nil {
			return fixErr
		}
		// --show: the password stays in this process's memory only, to
		// check that the agent returned the one the fake CCP holds.
		out, err := stdout(e.wine(ctx, dir, nil, credagent, "resolve", "--dev", agentWin, "--run-id", "wine-e2e-1", "--flow-id", "wine-e2e", "--json", "--show", "sap-prod-admin"))
		if err != nil {
			return fmt.Errorf("resolve: %v", err)
		}
		var got []struct {
			Name, Username, Password string
		}
		if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
			return fmt.Errorf("resolve printed %d bytes that are not one credential: %v", len(out), err)
		}
		if got[0].Username != "svc_sap" || !slices.Contains(fix.Passwords(), got[0].Password) || got[0].Password == "" {
			return fmt.Errorf("resolve returned user %q and a password the fake CCP does not hold", got[0].Username)
		}
		return nil
	})

	st.do("audit-names-caller", func() error {
		// In dev mode the audit stream goes to standard error with the log.
		b, err := os.ReadFile(filepath.Join(dir, "agent.log"))
		if err != nil {
			return err
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(l, []byte(`"run_id":"wine-e2e-1"`)) && bytes.Contains(l, []byte(`"stream":"audit"`)) {
				if !bytes.Contains(l, []byte(`"caller_sid":"S-1-5-`)) || !bytes.Contains(bytes.ToLower(l), []byte(`credagent.exe`)) {
					return fmt.Errorf("the audit record of the resolve lacks the caller's SID or executable: %s", l)
				}
				return nil
			}
		}
		return fmt.Errorf("no audit record of run wine-e2e-1 in %d bytes", len(b))
	})

	if stopAgent != nil {
		stopAgent()
	}
	e.wineserverKill()

	st.do("password-on-no-disk", func() error {
		if fixErr != nil {
			return fixErr
		}
		var needles []secrettest.Needle
		for _, pw := range fix.Passwords() {
			needles = append(needles, secrettest.Password(pw), utf16Needle(pw))
		}
		// Control: the fake CCP's own fixture holds them, so finding
		// nothing below means something.
		if b, _ := os.ReadFile(filepath.Join(ccpDir, fakeccp.DevFixtureFile)); len(secrettest.Find(b, needles)) == 0 {
			return errors.New("scanner control: the fixture itself holds none of the passwords")
		}
		var found []string
		files := 0
		for _, d := range []string{agentDir, dir + "/agent.out", dir + "/agent.log", e.upper} {
			if d == "" {
				continue
			}
			r, err := scan(d, needles)
			if err != nil {
				return err
			}
			files += r.Files
			found = append(found, r.Found...)
		}
		if len(found) > 0 {
			return fmt.Errorf("found on disk: %s", strings.Join(found, "; "))
		}
		fmt.Printf("   (scanned %d files: the agent's directory and logs, and every file written in the Wine root)\n", files)
		return nil
	})
}

// utf16Needle is pw as UTF-16LE, the form a Windows program's wide-string
// API would write it in.
func utf16Needle(pw string) secrettest.Needle {
	var b []byte
	for _, u := range utf16.Encode([]rune(pw)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return secrettest.Needle{What: fmt.Sprintf("password as UTF-16 (%d bytes)", len(pw)), Bytes: b}
}

// scan is secrettest.ScanDir for a directory or one file.
func scan(path string, needles []secrettest.Needle) (secrettest.Report, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return secrettest.Report{}, err
	}
	if fi.IsDir() {
		return secrettest.ScanDir(path, needles)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return secrettest.Report{}, err
	}
	r := secrettest.Report{Files: 1, Bytes: len(b)}
	for _, w := range secrettest.Find(b, needles) {
		r.Found = append(r.Found, w+" in "+filepath.Base(path))
	}
	return r, nil
}

// start runs cmd with its stdout in base+".out" and stderr in base+".log";
// it returns a reader of the stdout file and a stop function.
func start(ctx context.Context, cmd *exec.Cmd, base string) (string, func(), error) {
	outF, err := os.Create(base + ".out")
	if err != nil {
		return "", nil, err
	}
	logF, err := os.Create(base + ".log")
	if err != nil {
		outF.Close()
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = outF, logF
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		outF.Close()
		logF.Close()
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		outF.Close()
		logF.Close()
	}
	return base + ".out", stop, nil
}

// waitFor waits until a line of file matches re, and returns its submatches.
func waitFor(ctx context.Context, file string, re *regexp.Regexp, d time.Duration) ([]string, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if f, err := os.Open(file); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m := re.FindStringSubmatch(strings.TrimRight(sc.Text(), "\r")); m != nil {
					f.Close()
					return m, nil
				}
			}
			f.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("no line matching %q in %s after %s", re, file, d)
}
