//go:build linux

package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/credagent/credagent/installer"
)

// The unit Install writes; the packages install theirs under /usr/lib or /lib.
const unitPath = "/etc/systemd/system/" + Name + ".service"

// unitDirs are searched in systemd's order of precedence.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// SocketGroup is the group the unit runs with (Group=), which owns the socket.
const SocketGroup = "credagent"

func findUnit() (path, content string, err error) {
	for _, d := range unitDirs {
		p := filepath.Join(d, Name+".service")
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("service: %w", err)
		}
		return p, string(b), nil
	}
	return "", "", nil
}

func systemdRunning() bool {
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

func (m Manager) install(opts InstallOptions) (InstallResult, error) {
	var res InstallResult
	exe, err := m.exe()
	if err != nil {
		return res, err
	}
	path, content, err := findUnit()
	if err != nil {
		return res, err
	}
	if path != "" {
		words, _ := installer.ParseExecStart(content)
		if !SameCommand(words, exe, m.Args(), false) {
			return res, fmt.Errorf("%w: %s runs %q, not %q; remove it first (credagent uninstall, or the package that installed it)",
				ErrOtherService, path, strings.Join(words, " "), installer.SystemdCommandLine(exe, m.Args()))
		}
		res.AlreadyInstalled = true
	}
	if !systemdRunning() {
		return res, errors.New("service: install: systemd is not running on this machine")
	}
	if err := ensureGroup(SocketGroup); err != nil {
		return res, err
	}
	if res.ConfigCreated, err = seedConfig(m.ConfigPath, opts); err != nil {
		return res, err
	}
	if res.AlreadyInstalled {
		// Same service: make sure it is enabled, as a fresh install would be.
		if out, err := exec.Command("systemctl", "enable", Name+".service").CombinedOutput(); err != nil {
			return res, fmt.Errorf("service: systemctl enable: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return res, nil
	}
	// kardianos writes /etc/systemd/system/credagent.service from the
	// "template", enables it and reloads systemd. Our unit has no template
	// actions, so it is written as rendered here: the packaged unit with
	// ExecStart naming this executable.
	s, err := m.control(map[string]any{"SystemdScript": installer.SystemdUnitFor(exe, m.Args())})
	if err != nil {
		return res, err
	}
	if err := s.Install(); err != nil {
		return res, fmt.Errorf("service: install: %w", err)
	}
	res.Notes = append(res.Notes, "wrote "+unitPath+" and enabled it; it starts at boot, or now with: credagent start")
	return res, nil
}

func ensureGroup(name string) error {
	if _, err := user.LookupGroup(name); err == nil {
		return nil
	}
	if out, err := exec.Command("groupadd", "--system", name).CombinedOutput(); err != nil {
		return fmt.Errorf("service: groupadd --system %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (m Manager) uninstall() error {
	path, _, err := findUnit()
	if err != nil {
		return err
	}
	switch {
	case path == "":
		return ErrNotInstalled
	case path != unitPath:
		return fmt.Errorf("service: %s belongs to the credagent package; remove it with the package manager (apt remove credagent, dnf remove credagent)", path)
	}
	if systemdRunning() {
		// Stopping a stopped unit succeeds; a failure here is real.
		if out, err := exec.Command("systemctl", "stop", Name+".service").CombinedOutput(); err != nil {
			return fmt.Errorf("service: systemctl stop: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	s, err := m.control(nil)
	if err != nil {
		return err
	}
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("service: uninstall: %w", err)
	}
	return nil
}

func reload() error {
	if out, err := exec.Command("systemctl", "reload", Name+".service").CombinedOutput(); err != nil {
		return fmt.Errorf("service: systemctl reload: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// configure on Linux only seeds the config: the unit carries everything else.
func (m Manager) configure(opts InstallOptions) ([]string, error) {
	if _, err := seedConfig(m.ConfigPath, opts); err != nil {
		return nil, err
	}
	return nil, ensureGroup(SocketGroup)
}

func canQuery() error {
	if !systemdRunning() {
		return errors.New("systemd is not running on this machine")
	}
	return nil
}
