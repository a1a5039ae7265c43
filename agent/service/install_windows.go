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

	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/winver"

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
		bin, err := binaryPath(s)
		s.Close()
		if err != nil {
			return res, fmt.Errorf("service: reading the existing service: %w", err)
		}
		if !SameCommand(SplitWindowsCommandLine(bin), exe, m.Args(), true) {
			return res, fmt.Errorf("%w: it runs %s, not %s; remove it first (credagent uninstall, or the MSI that installed it)",
				ErrOtherService, bin, WindowsCommandLine(exe, m.Args()))
		}
		res.AlreadyInstalled = true
	} else if !errors.Is(err, errServiceDoesNotExist) {
		return res, fmt.Errorf("service: opening the existing service: %w", err)
	}

	if w, err := checkInstallPath(exe); err != nil {
		return res, err
	} else if w != "" {
		res.Warnings = append(res.Warnings, w)
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
	w, err := configureService(sm, m.stopGrace())
	res.Warnings = append(res.Warnings, w...)
	if err != nil {
		return res, err
	}
	res.Notes = append(res.Notes, "registered the service (automatic, delayed start); start it now with: credagent start")
	return res, nil
}

func (m Manager) configure(opts InstallOptions) ([]string, error) {
	exe, err := m.exe()
	if err != nil {
		return nil, err
	}
	var warnings []string
	if w, err := checkInstallPath(exe); err != nil {
		return nil, err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	if err := SecureProgramData(filepath.Dir(m.ConfigPath)); err != nil {
		return warnings, err
	}
	if _, err := seedConfig(m.ConfigPath, opts); err != nil {
		return warnings, err
	}
	sm, err := mgr.Connect()
	if err != nil {
		return warnings, fmt.Errorf("service: connecting to the SCM: %w", err)
	}
	defer sm.Disconnect()
	w, err := configureService(sm, m.stopGrace())
	return append(warnings, w...), err
}

// stopGrace is the drain grace of the config the service runs with, for
// its preshutdown timeout; the default when the config does not load.
func (m Manager) stopGrace() time.Duration {
	if c, err := config.Load(m.ConfigPath); err == nil && c.API.ShutdownGrace > 0 {
		return c.API.ShutdownGrace
	}
	return RunOptions{}.withDefaults().StopTimeout
}

// binaryPath reads the service's command line with QueryServiceConfig
// alone: mgr.Config also queries optional levels (description, delayed
// start, SID type) that some service managers refuse (Wine's does).
func binaryPath(s *mgr.Service) (string, error) {
	var need uint32
	err := windows.QueryServiceConfig(s.Handle, nil, 0, &need)
	if err != windows.ERROR_INSUFFICIENT_BUFFER {
		return "", fmt.Errorf("QueryServiceConfig: %w", err)
	}
	buf := make([]byte, need)
	qsc := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
	if err := windows.QueryServiceConfig(s.Handle, qsc, need, &need); err != nil {
		return "", fmt.Errorf("QueryServiceConfig: %w", err)
	}
	return windows.UTF16PtrToString(qsc.BinaryPathName), nil
}

// configureService sets what kardianos and the MSI's ServiceInstall table
// do not: the full recovery policy (required: without it a failed agent
// stays down), then, each optional (applySCMSteps), recovery also on
// non-crash failures, the service SID, delayed automatic start, the
// preshutdown timeout, and the Event Log source. An optional level the SCM
// refuses is a warning.
func configureService(sm *mgr.Mgr, grace time.Duration) ([]string, error) {
	s, err := sm.OpenService(Name)
	if err != nil {
		return nil, fmt.Errorf("service: opening %s: %w", Name, err)
	}
	defer s.Close()

	actions := make([]mgr.RecoveryAction, 0, len(Recovery.Steps))
	for _, st := range Recovery.Steps {
		actions = append(actions, mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: st.Delay})
	}
	return applySCMSteps([]scmStep{
		{"the recovery actions (restart on failure)", true, func() error {
			return s.SetRecoveryActions(actions, uint32(Recovery.ResetPeriod/time.Second))
		}},
		{"recovery on non-crash failures", false, func() error {
			return s.SetRecoveryActionsOnNonCrashFailures(Recovery.OnNonCrashFailures)
		}},
		// An unrestricted service SID (NT SERVICE\credagent) in the
		// service's token, so files, keys and the pipe can be granted to
		// it by name. SERVICE_SID_INFO is a single DWORD.
		{"the service SID", false, func() error {
			sid := struct{ ServiceSidType uint32 }{windows.SERVICE_SID_TYPE_UNRESTRICTED}
			return windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_SERVICE_SID_INFO, (*byte)(unsafe.Pointer(&sid)))
		}},
		// SERVICE_DELAYED_AUTO_START_INFO is a single BOOL; the start type
		// itself (automatic) was set when the service was created.
		{"delayed automatic start", false, func() error {
			delayed := struct{ DelayedAutostart uint32 }{1}
			return windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed)))
		}},
		{"the description", false, func() error {
			d, err := windows.UTF16PtrFromString(Description)
			if err != nil {
				return err
			}
			desc := windows.SERVICE_DESCRIPTION{Description: d}
			return windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DESCRIPTION, (*byte)(unsafe.Pointer(&desc)))
		}},
		// SERVICE_PRESHUTDOWN_INFO: how long the SCM waits for the stop it
		// sends with SERVICE_CONTROL_PRESHUTDOWN (run_windows.go accepts it).
		{"the preshutdown timeout", false, func() error {
			info := struct{ PreshutdownTimeout uint32 }{uint32(PreshutdownTimeout(grace) / time.Millisecond)}
			return windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info)))
		}},
		{"the Event Log source", false, func() error {
			if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil &&
				!strings.Contains(err.Error(), "exists") {
				return err
			}
			return nil
		}},
	})
}

// SecureProgramData creates dir (normally %ProgramData%\credagent) if needed
// and gives it ProgramDataSDDL: Administrators as owner, taking ownership
// from whoever created it, and a protected DACL for SYSTEM and
// Administrators only, inherited by everything below.
//
// It acts on one handle to the directory, opened without following a
// reparse point (FILE_FLAG_OPEN_REPARSE_POINT) and without FILE_SHARE_DELETE
// so that the directory cannot be renamed or replaced while it is being
// secured: a junction is refused, never followed, and no junction swapped
// in after the check can redirect the change. A directory this install did
// not create and that was not already private has its contents refused
// (programDataVerdict).
func SecureProgramData(dir string) error {
	created := false
	if err := os.Mkdir(dir, 0o700); err == nil {
		created = true
	} else if !os.IsExist(err) {
		return fmt.Errorf("service: creating %s: %w", dir, err)
	}
	// Setting an owner other than oneself needs SeTakeOwnershipPrivilege
	// (or SeRestorePrivilege), which an elevated administrator holds but
	// has disabled; they are disabled again when done.
	restore := enablePrivileges("SeTakeOwnershipPrivilege", "SeRestorePrivilege")
	defer restore()

	h, err := openDirHandle(dir, windows.READ_CONTROL|windows.WRITE_OWNER|windows.WRITE_DAC|windows.FILE_READ_ATTRIBUTES)
	twoStep := false
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		// A hostile DACL and no SeRestorePrivilege: take ownership first
		// (SeTakeOwnershipPrivilege grants WRITE_OWNER whatever the DACL
		// says), then the owner's implicit WRITE_DAC sets the DACL.
		h, err = openDirHandle(dir, windows.READ_CONTROL|windows.WRITE_OWNER|windows.FILE_READ_ATTRIBUTES)
		twoStep = true
	}
	if err != nil {
		return fmt.Errorf("service: opening %s: %w", dir, err)
	}
	defer windows.CloseHandle(h)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fmt.Errorf("service: %s: %w", dir, err)
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 || info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY == 0 {
		return fmt.Errorf("service: %s is a link or not a directory; remove it and install again", dir)
	}
	wasPrivate := false
	if sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION); err == nil {
		wasPrivate = isPrivateDescriptor(sd)
	}
	if !created && !wasPrivate {
		// The handle holds the directory in place (no FILE_SHARE_DELETE),
		// so listing it by name lists this directory.
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("service: listing %s: %w", dir, err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if err := programDataVerdict(dir, created, wasPrivate, names); err != nil {
			return err
		}
	}

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
	// Owner first, then the DACL, as in Microsoft's "Taking Object
	// Ownership" sample.
	if err := windows.SetSecurityInfo(h, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION, owner, nil, nil, nil); err != nil {
		return fmt.Errorf("service: SetSecurityInfo(owner) %s: %w", dir, err)
	}
	hDACL := h
	if twoStep {
		h2, err := openDirHandle(dir, windows.READ_CONTROL|windows.WRITE_DAC|windows.FILE_READ_ATTRIBUTES)
		if err != nil {
			return fmt.Errorf("service: reopening %s: %w", dir, err)
		}
		defer windows.CloseHandle(h2)
		var info2 windows.ByHandleFileInformation
		if err := windows.GetFileInformationByHandle(h2, &info2); err != nil {
			return fmt.Errorf("service: %s: %w", dir, err)
		}
		if info2.VolumeSerialNumber != info.VolumeSerialNumber || info2.FileIndexHigh != info.FileIndexHigh || info2.FileIndexLow != info.FileIndexLow {
			return fmt.Errorf("service: %s changed while it was being secured; install again", dir)
		}
		hDACL = h2
	}
	if err := windows.SetSecurityInfo(hDACL, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("service: SetSecurityInfo(DACL) %s: %w", dir, err)
	}
	return nil
}

// openDirHandle opens the directory itself (FILE_FLAG_BACKUP_SEMANTICS),
// never what a reparse point names (FILE_FLAG_OPEN_REPARSE_POINT), and
// shares it for reading and writing but not deletion, so that it cannot be
// renamed away while the handle is open.
func openDirHandle(dir string, access uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	return windows.CreateFile(p, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
}

// isPrivateDescriptor: owned by SYSTEM or Administrators, a protected DACL,
// and no allow entry for anyone else.
func isPrivateDescriptor(sd *windows.SECURITY_DESCRIPTOR) bool {
	owner, _, err := sd.Owner()
	if err != nil || owner == nil || !trustedWriters[owner.String()] {
		return false
	}
	ctl, _, err := sd.Control()
	if err != nil || ctl&windows.SE_DACL_PROTECTED == 0 {
		return false
	}
	aces, nilDACL, err := daclEntries(sd)
	if err != nil || nilDACL {
		return false
	}
	for _, a := range aces {
		if a.Allow && a.SID != "S-1-5-18" && a.SID != "S-1-5-32-544" {
			return false
		}
	}
	return true
}

// daclEntries lists a descriptor's DACL as ACEs; nilDACL when it has none
// (everyone has full access).
func daclEntries(sd *windows.SECURITY_DESCRIPTOR) (aces []ACE, nilDACL bool, err error) {
	dacl, _, err := sd.DACL()
	if err != nil {
		if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) {
			return nil, true, nil
		}
		return nil, false, err
	}
	if dacl == nil {
		return nil, true, nil
	}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return nil, false, err
		}
		var allow bool
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE:
			allow = true
		case windows.ACCESS_DENIED_ACE_TYPE:
		default:
			// Object or callback entries: counted as allowing, to refuse
			// rather than miss a writer.
			allow = true
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		aces = append(aces, ACE{
			Allow:       allow,
			InheritOnly: ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0,
			Mask:        uint32(ace.Mask),
			SID:         sid.String(),
		})
	}
	return aces, false, nil
}

// writersOf returns who other than SYSTEM, Administrators and
// TrustedInstaller holds one of mask's rights on path.
func writersOf(path string, mask uint32) ([]string, error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return nil, err
	}
	owner := ""
	if o, _, err := sd.Owner(); err == nil && o != nil {
		owner = o.String()
	}
	aces, nilDACL, err := daclEntries(sd)
	if err != nil {
		return nil, err
	}
	return untrustedWriters(owner, aces, nilDACL, mask), nil
}

// installPathProblem checks that only SYSTEM, Administrators and
// TrustedInstaller can change the executable the service will run: the
// file and its folder (any write), and every folder above it (replacing
// the one below).
func installPathProblem(exe string) error {
	exeAndDir, above, err := pathWriters(exe, false)
	if err != nil {
		return err
	}
	return installPathVerdict(exe, exeAndDir, above)
}

// pathWriters returns who other than SYSTEM, Administrators and
// TrustedInstaller can change path: the file and its folder (any write),
// and each folder above (replacing the one below). When mayBeMissing (a
// log file before its first line, in a folder the agent creates), what
// does not exist yet is left out and the nearest folder that exists
// counts for any write: whoever can write there could put a junction
// where the agent will create the rest.
func pathWriters(path string, mayBeMissing bool) (fileAndDir, above map[string][]string, err error) {
	fileAndDir, above = map[string][]string{}, map[string][]string{}
	first := []string{path, filepath.Dir(path)}
	if mayBeMissing {
		p := path
		for {
			if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
				break
			}
			p = filepath.Dir(p)
		}
		first = []string{p}
		if p == path {
			first = append(first, filepath.Dir(path))
		}
	}
	for _, p := range first {
		w, err := writersOf(p, anyWrite)
		if err != nil {
			return nil, nil, fmt.Errorf("service: reading the security of %s: %w", p, err)
		}
		fileAndDir[p] = w
	}
	last := first[len(first)-1]
	for p := filepath.Dir(last); p != last; last, p = p, filepath.Dir(p) {
		w, err := writersOf(p, replaceChild)
		if err != nil {
			return nil, nil, fmt.Errorf("service: reading the security of %s: %w", p, err)
		}
		above[p] = w
	}
	return fileAndDir, above, nil
}

// checkInstallPath refuses to register a service whose executable others
// can change. Under Wine, which enforces no ACLs (and approximates them
// from Unix modes), the finding is a warning instead.
func checkInstallPath(exe string) (warning string, err error) {
	err = installPathProblem(exe)
	if err != nil && winver.IsWine() {
		return err.Error() + " (a warning only under Wine, which enforces no ACLs)", nil
	}
	return "", err
}

// enablePrivileges enables the named privileges in the process token, if it
// holds them, and returns the function that puts back their previous state
// (R5: an installer process keeps no privilege enabled longer than it
// needs). Failures are left to show up in the call that needed them.
func enablePrivileges(names ...string) (restore func()) {
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		return func() {}
	}
	var previous []windows.Tokenprivileges
	for _, n := range names {
		var luid windows.LUID
		np, _ := windows.UTF16PtrFromString(n)
		if windows.LookupPrivilegeValue(nil, np, &luid) != nil {
			continue
		}
		tp := windows.Tokenprivileges{PrivilegeCount: 1}
		tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
		var prev windows.Tokenprivileges
		var n uint32
		// PreviousState holds only what the call changed: nothing when the
		// privilege was already enabled or is not held.
		if windows.AdjustTokenPrivileges(tok, false, &tp, uint32(unsafe.Sizeof(prev)), &prev, &n) == nil && prev.PrivilegeCount > 0 {
			previous = append(previous, prev)
		}
	}
	return func() {
		defer tok.Close()
		for i := len(previous) - 1; i >= 0; i-- {
			windows.AdjustTokenPrivileges(tok, false, &previous[i], 0, nil, nil)
		}
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

// Inspect reads back how the installed service is configured, for doctor:
// the settings install applies (the optional ones it may have had refused)
// and whether only SYSTEM and Administrators can change its executable. It
// needs no privileges beyond querying the service. No findings when the
// service is not installed.
func (m Manager) Inspect() []Finding {
	scm, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return []Finding{{"service", "WARN", "cannot connect to the service manager: " + err.Error(), ""}}
	}
	defer windows.CloseServiceHandle(scm)
	name, _ := windows.UTF16PtrFromString(Name)
	h, err := windows.OpenService(scm, name, windows.SERVICE_QUERY_CONFIG)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return nil
	}
	if err != nil {
		return []Finding{{"service", "WARN", "cannot open the service: " + err.Error(), ""}}
	}
	s := &mgr.Service{Name: Name, Handle: h}
	defer s.Close()
	o := scmObserved{WantPreshutdown: PreshutdownTimeout(m.stopGrace())}
	var actions []mgr.RecoveryAction
	actions, o.RecoveryErr = s.RecoveryActions()
	o.RecoveryActions = len(actions)
	o.NonCrash, o.NonCrashErr = s.RecoveryActionsOnNonCrashFailures()
	var sid uint32
	if sid, o.SIDErr = queryDWORD(h, windows.SERVICE_CONFIG_SERVICE_SID_INFO); o.SIDErr == nil {
		o.SIDUnrestricted = sid == windows.SERVICE_SID_TYPE_UNRESTRICTED
	}
	var delayed uint32
	if delayed, o.DelayedErr = queryDWORD(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO); o.DelayedErr == nil {
		o.Delayed = delayed != 0
	}
	var pre uint32
	if pre, o.PreshutdownErr = queryDWORD(h, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO); o.PreshutdownErr == nil {
		o.Preshutdown = time.Duration(pre) * time.Millisecond
	}
	if bin, err := binaryPath(s); err != nil {
		o.ExePathProblem = err
	} else if words := SplitWindowsCommandLine(bin); len(words) > 0 {
		o.ExePathProblem = installPathProblem(words[0])
		o.ExePathOnlyWarning = winver.IsWine()
	}
	return evaluateSCM(o)
}

// queryDWORD reads a QueryServiceConfig2 level whose structure is a single
// DWORD (SERVICE_SID_INFO, SERVICE_DELAYED_AUTO_START_INFO,
// SERVICE_PRESHUTDOWN_INFO).
func queryDWORD(h windows.Handle, level uint32) (uint32, error) {
	var buf [16]uint32 // DWORD-aligned
	var need uint32
	if err := windows.QueryServiceConfig2(h, level, (*byte)(unsafe.Pointer(&buf[0])), uint32(unsafe.Sizeof(buf)), &need); err != nil {
		return 0, err
	}
	return buf[0], nil
}
