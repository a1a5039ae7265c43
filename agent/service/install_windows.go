//go:build windows

package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// errServiceDoesNotExist is ERROR_SERVICE_DOES_NOT_EXIST.
const errServiceDoesNotExist = windows.ERROR_SERVICE_DOES_NOT_EXIST

func (m Manager) install(opts InstallOptions) (InstallResult, error) {
	var res InstallResult
	exe, err := m.exe()
	if err != nil {
		return res, err
	}
	sm, err := mgr.Connect()
	if err != nil {
		return res, fmt.Errorf("service: connecting to the SCM: %w", err)
	}
	defer sm.Disconnect()
	if s, err := sm.OpenService(Name); err == nil {
		cfg, err := s.Config()
		s.Close()
		if err != nil {
			return res, fmt.Errorf("service: reading the existing service: %w", err)
		}
		if !SameCommand(SplitWindowsCommandLine(cfg.BinaryPathName), exe, m.Args(), true) {
			return res, fmt.Errorf("%w: it runs %s, not %s; remove it first (credagent uninstall, or the MSI that installed it)",
				ErrOtherService, cfg.BinaryPathName, WindowsCommandLine(exe, m.Args()))
		}
		res.AlreadyInstalled = true
	} else if !errors.Is(err, errServiceDoesNotExist) {
		return res, fmt.Errorf("service: opening the existing service: %w", err)
	}

	if err := SecureProgramData(filepath.Dir(m.ConfigPath)); err != nil {
		return res, err
	}
	if res.ConfigCreated, err = seedConfig(m.ConfigPath, opts); err != nil {
		return res, err
	}
	if !res.AlreadyInstalled {
		// kardianos creates the service (automatic, delayed start, one
		// restart action) and its Event Log source; configureService below
		// sets the rest.
		ksvc, err := m.control(nil)
		if err != nil {
			return res, err
		}
		if err := ksvc.Install(); err != nil {
			return res, fmt.Errorf("service: install: %w", err)
		}
	}
	if err := configureService(sm); err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, "registered the service (automatic, delayed start); start it now with: credagent start")
	return res, nil
}

func (m Manager) configure(opts InstallOptions) error {
	if err := SecureProgramData(filepath.Dir(m.ConfigPath)); err != nil {
		return err
	}
	if _, err := seedConfig(m.ConfigPath, opts); err != nil {
		return err
	}
	sm, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service: connecting to the SCM: %w", err)
	}
	defer sm.Disconnect()
	return configureService(sm)
}

// configureService sets what kardianos and the MSI's ServiceInstall table
// do not: the full recovery policy, delayed start, the service SID, and the
// Event Log source.
func configureService(sm *mgr.Mgr) error {
	s, err := sm.OpenService(Name)
	if err != nil {
		return fmt.Errorf("service: opening %s: %w", Name, err)
	}
	defer s.Close()

	actions := make([]mgr.RecoveryAction, 0, len(Recovery.Steps))
	for _, st := range Recovery.Steps {
		actions = append(actions, mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: st.Delay})
	}
	if err := s.SetRecoveryActions(actions, uint32(Recovery.ResetPeriod/time.Second)); err != nil {
		return fmt.Errorf("service: SetRecoveryActions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(Recovery.OnNonCrashFailures); err != nil {
		return fmt.Errorf("service: SetRecoveryActionsOnNonCrashFailures: %w", err)
	}

	// An unrestricted service SID (NT SERVICE\credagent) in the service's
	// token, so files, keys and the pipe can be granted to it by name.
	// SERVICE_SID_INFO is a single DWORD, dwServiceSidType.
	sid := struct{ ServiceSidType uint32 }{windows.SERVICE_SID_TYPE_UNRESTRICTED}
	if err := windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_SERVICE_SID_INFO, (*byte)(unsafe.Pointer(&sid))); err != nil {
		return fmt.Errorf("service: setting the service SID type: %w", err)
	}

	cfg, err := s.Config()
	if err != nil {
		return fmt.Errorf("service: reading the config: %w", err)
	}
	if cfg.StartType != mgr.StartAutomatic || !cfg.DelayedAutoStart || cfg.Description == "" {
		cfg.StartType = mgr.StartAutomatic
		cfg.DelayedAutoStart = true
		if cfg.Description == "" {
			cfg.Description = Description
		}
		cfg.SidType = windows.SERVICE_SID_TYPE_UNRESTRICTED
		if err := s.UpdateConfig(cfg); err != nil {
			return fmt.Errorf("service: setting delayed automatic start: %w", err)
		}
	}

	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil &&
		!strings.Contains(err.Error(), "exists") {
		return fmt.Errorf("service: registering the Event Log source: %w", err)
	}
	return nil
}

// SecureProgramData creates dir (normally %ProgramData%\credagent) if needed
// and gives it ProgramDataSDDL: Administrators as owner, taking ownership
// from whoever created it, and a protected DACL for SYSTEM and
// Administrators only, inherited by everything below. A reparse point (a
// junction or symlink planted there) is refused, not followed.
func SecureProgramData(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("service: creating %s: %w", dir, err)
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return fmt.Errorf("service: %s: %w", dir, err)
	}
	attrs, err := windows.GetFileAttributes(p)
	if err != nil {
		return fmt.Errorf("service: %s: %w", dir, err)
	}
	if attrs&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 || attrs&windows.FILE_ATTRIBUTE_DIRECTORY == 0 {
		return fmt.Errorf("service: %s is a link or not a directory; remove it and install again", dir)
	}
	// Setting an owner other than oneself needs SeTakeOwnershipPrivilege
	// (or SeRestorePrivilege), which an elevated administrator holds but
	// has disabled.
	enablePrivileges("SeTakeOwnershipPrivilege", "SeRestorePrivilege")

	sd, err := windows.SecurityDescriptorFromString(ProgramDataSDDL)
	if err != nil {
		return fmt.Errorf("service: parsing the ProgramData SDDL: %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	// Two calls, as in Microsoft's "Taking Object Ownership" sample: taking
	// ownership needs only WRITE_OWNER, which SeTakeOwnershipPrivilege grants
	// whatever the DACL says, while a single call that also sets the DACL
	// needs WRITE_DAC too, which a hostile DACL on a pre-created directory
	// withholds. Once Administrators own it, the owner's implicit WRITE_DAC
	// lets the second call replace the DACL.
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION, owner, nil, nil, nil); err != nil {
		return fmt.Errorf("service: SetNamedSecurityInfo(owner) %s: %w", dir, err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("service: SetNamedSecurityInfo(DACL) %s: %w", dir, err)
	}
	return nil
}

// enablePrivileges enables the named privileges in the process token, if it
// holds them. Failures are left to show up in the call that needed them.
func enablePrivileges(names ...string) {
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		return
	}
	defer tok.Close()
	for _, n := range names {
		var luid windows.LUID
		np, _ := windows.UTF16PtrFromString(n)
		if windows.LookupPrivilegeValue(nil, np, &luid) != nil {
			continue
		}
		tp := windows.Tokenprivileges{PrivilegeCount: 1}
		tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
		windows.AdjustTokenPrivileges(tok, false, &tp, 0, nil, nil)
	}
}

func (m Manager) uninstall() error {
	st, err := m.Status()
	if err != nil {
		return err
	}
	if st == StateNotInstalled {
		return ErrNotInstalled
	}
	s, err := m.control(nil)
	if err != nil {
		return err
	}
	if st == StateRunning {
		if err := s.Stop(); err != nil {
			return fmt.Errorf("service: stop: %w", err)
		}
	}
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("service: uninstall: %w", err)
	}
	return nil
}

// reload sends SERVICE_CONTROL_PARAMCHANGE, which Run turns into a reload.
func reload() error {
	sm, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service: connecting to the SCM: %w", err)
	}
	defer sm.Disconnect()
	s, err := sm.OpenService(Name)
	if err != nil {
		return fmt.Errorf("service: opening %s: %w", Name, err)
	}
	defer s.Close()
	if _, err := s.Control(svc.ParamChange); err != nil {
		return fmt.Errorf("service: sending PARAMCHANGE: %w", err)
	}
	return nil
}

func canQuery() error { return nil }
