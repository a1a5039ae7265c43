package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ks "github.com/kardianos/service"
)

// State is the service's state as the service manager reports it.
type State string

// The states Status returns.
const (
	StateRunning      State = "running"
	StateStopped      State = "stopped"
	StateFailed       State = "failed"
	StateNotInstalled State = "not-installed"
	StateUnknown      State = "unknown"
)

var (
	// ErrNotAdmin means the command needs root or an elevated administrator.
	ErrNotAdmin = errors.New("service: not running as root or an elevated administrator")
	// ErrOtherService means a service called credagent exists and runs a
	// different command line; it is left alone.
	ErrOtherService = errors.New("service: a different credagent service is already installed")
	// ErrNotInstalled means there is no credagent service.
	ErrNotInstalled = errors.New("service: credagent is not installed")
)

// Manager installs and controls the credagent service for one executable and
// config file.
type Manager struct {
	// Exe is the executable the service runs. Default: this one.
	Exe string
	// ConfigPath is the config file the service is started with.
	ConfigPath string
}

// InstallResult says what Install did.
type InstallResult struct {
	AlreadyInstalled bool     // the same service was there; settings re-applied
	ConfigCreated    bool     // the default config was written
	Notes            []string // anything an operator should know
	// Warnings are optional settings the service manager refused; the
	// service works without them, and doctor reports them.
	Warnings []string
}

func (m Manager) exe() (string, error) {
	if m.Exe != "" {
		return filepath.Abs(m.Exe)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("service: locating this executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return exe, nil
}

// Args are the arguments the service runs the executable with.
func (m Manager) Args() []string { return ServiceArgs(m.ConfigPath) }

// control returns the kardianos service used for start, stop, restart,
// status and (on Windows) the initial CreateService.
func (m Manager) control(extra ks.KeyValue) (ks.Service, error) {
	exe, err := m.exe()
	if err != nil {
		return nil, err
	}
	opt := ks.KeyValue{
		"StartType":              "automatic",
		"DelayedAutoStart":       true,
		"OnFailure":              "restart",
		"OnFailureDelayDuration": Recovery.Steps[0].Delay.String(),
		"OnFailureResetPeriod":   int(Recovery.ResetPeriod.Seconds()),
	}
	for k, v := range extra {
		opt[k] = v
	}
	s, err := ks.New(nopProgram{}, &ks.Config{
		Name:        Name,
		DisplayName: DisplayName,
		Description: Description,
		Executable:  exe,
		Arguments:   m.Args(),
		Option:      opt,
	})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return s, nil
}

// nopProgram satisfies kardianos's Interface for the control operations;
// running is Run's job.
type nopProgram struct{}

func (nopProgram) Start(ks.Service) error { return nil }
func (nopProgram) Stop(ks.Service) error  { return nil }

// Install registers the service (see the package doc). It is idempotent.
func (m Manager) Install(opts InstallOptions) (InstallResult, error) {
	if err := RequireAdmin(); err != nil {
		return InstallResult{}, err
	}
	if m.ConfigPath == "" {
		return InstallResult{}, errors.New("service: install: no config path")
	}
	return m.install(opts)
}

// Configure applies, to a service registered by someone else (the MSI's
// ServiceInstall table), what Install sets beyond registering it: on
// Windows the recovery actions, delayed start, service SID, Event Log source
// and the ProgramData ACL; and on both, the seeded config. The warnings are
// optional settings the service manager refused (see InstallResult).
func (m Manager) Configure(opts InstallOptions) (warnings []string, err error) {
	if err := RequireAdmin(); err != nil {
		return nil, err
	}
	if m.ConfigPath == "" {
		return nil, errors.New("service: configure: no config path")
	}
	return m.configure(opts)
}

// Uninstall stops and removes the service. State, keys and config stay.
func (m Manager) Uninstall() error {
	if err := RequireAdmin(); err != nil {
		return err
	}
	return m.uninstall()
}

// Start starts the installed service.
func (m Manager) Start() error { return m.do("start", ks.Service.Start) }

// Stop stops the service and waits for it to stop.
func (m Manager) Stop() error { return m.do("stop", ks.Service.Stop) }

// Restart stops and starts the service.
func (m Manager) Restart() error { return m.do("restart", ks.Service.Restart) }

func (m Manager) do(what string, f func(ks.Service) error) error {
	if err := RequireAdmin(); err != nil {
		return err
	}
	st, _ := m.Status()
	if st == StateNotInstalled {
		return ErrNotInstalled
	}
	s, err := m.control(nil)
	if err != nil {
		return err
	}
	if err := f(s); err != nil {
		return fmt.Errorf("service: %s: %w", what, err)
	}
	return nil
}

// Status returns the service manager's view of the service. It needs no
// privileges.
func (m Manager) Status() (State, error) {
	if err := canQuery(); err != nil {
		return StateUnknown, err
	}
	s, err := m.control(nil)
	if err != nil {
		return StateUnknown, err
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, ks.ErrNotInstalled):
		return StateNotInstalled, nil
	case err != nil && strings.Contains(err.Error(), "failed state"):
		return StateFailed, nil
	case err != nil:
		return StateUnknown, fmt.Errorf("service: status: %w", err)
	case st == ks.StatusRunning:
		return StateRunning, nil
	case st == ks.StatusStopped:
		return StateStopped, nil
	}
	return StateUnknown, nil
}

// Reload asks the running service to reload its config file: SIGHUP through
// systemctl reload on Linux, the PARAMCHANGE control on Windows. The agent
// logs whether it took the new config.
func (m Manager) Reload() error {
	if err := RequireAdmin(); err != nil {
		return err
	}
	st, err := m.Status()
	if err != nil {
		return err
	}
	switch st {
	case StateNotInstalled:
		return ErrNotInstalled
	case StateRunning:
	default:
		return fmt.Errorf("service: reload: the service is %s, not running", st)
	}
	return reload()
}
