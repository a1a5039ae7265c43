package service

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"
)

// This file is the Windows service's configuration as plain data, free of
// Windows calls, so that it is unit-tested on every OS. install_windows.go
// applies it through golang.org/x/sys/windows/svc/mgr.

// RecoveryStep is one SCM failure action: restart the service after Delay.
type RecoveryStep struct {
	Delay time.Duration
}

// Recovery is what the SCM does when the service fails, crash or not: restart
// after 5s, then 30s, then every 2 minutes, forgetting the count of failures
// after a day without one. Restarting for ever is deliberate: flows on this
// machine cannot get credentials without the agent, and a fault that heals
// (the network, a CCP certificate) should not need an administrator.
var Recovery = struct {
	Steps       []RecoveryStep
	ResetPeriod time.Duration
	// OnNonCrashFailures also applies Steps when the service stops with a
	// non-zero exit code (start-up failed), not only when it crashes.
	OnNonCrashFailures bool
}{
	Steps:              []RecoveryStep{{5 * time.Second}, {30 * time.Second}, {2 * time.Minute}},
	ResetPeriod:        24 * time.Hour,
	OnNonCrashFailures: true,
}

// ProgramDataSDDL is the security descriptor of %ProgramData%\credagent:
//
//	O:BA                owner: BUILTIN\Administrators (taken from whoever made it)
//	D:P                 a protected DACL: nothing inherited from ProgramData,
//	                    whose default lets Users create and read files
//	(A;OICI;FA;;;SY)    full access for LocalSystem, the service's account,
//	(A;OICI;FA;;;BA)    and Administrators, both inherited by every file
//	                    and directory below.
//
// The service runs as LocalSystem, so its service SID (NT SERVICE\credagent)
// needs no ACE here, and none of the agent's descriptors (this one, the
// named pipe's, the CNG key's) grants it anything today: SY covers the
// service.
const ProgramDataSDDL = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// Event Log event IDs written by the service.
const (
	EventInfo        = 1
	EventWarning     = 2
	EventError       = 3
	EventStartFailed = 100 // start-up failed; the message holds the reason
)

// ServiceArgs are the arguments the service is registered with.
func ServiceArgs(configPath string) []string {
	return []string{"run", "--config", configPath}
}

// WindowsCommandLine joins exe and args into one command line quoted the way
// CommandLineToArgvW and the Go runtime parse it back.
func WindowsCommandLine(exe string, args []string) string {
	parts := []string{quoteWindowsExe(exe)}
	for _, a := range args {
		parts = append(parts, quoteWindowsArg(a))
	}
	return strings.Join(parts, " ")
}

// The program name is parsed without backslash escapes: it is simply quoted
// when it has a space (C:\Program Files\...), which also avoids the unquoted
// service path problem.
func quoteWindowsExe(exe string) string {
	if exe == "" || strings.ContainsAny(exe, " \t") {
		return `"` + exe + `"`
	}
	return exe
}

func quoteWindowsArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"") {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(a); i++ {
		switch c := a[i]; c {
		case '\\':
			slashes++
			b.WriteByte(c)
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			b.WriteByte(c)
			slashes = 0
		default:
			slashes = 0
			b.WriteByte(c)
		}
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// SplitWindowsCommandLine splits a service's BinaryPathName the way
// CommandLineToArgvW does (program name first, without escapes).
func SplitWindowsCommandLine(s string) []string {
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return nil
	}
	var args []string
	// The program name.
	if s[0] == '"' {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return []string{s[1:]}
		}
		args = append(args, s[1:1+end])
		s = s[2+end:]
	} else {
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			return []string{s}
		}
		args = append(args, s[:end])
		s = s[end:]
	}
	// The arguments.
	var cur strings.Builder
	inArg, quoted, slashes := false, false, 0
	flush := func() {
		cur.WriteString(strings.Repeat(`\`, slashes))
		slashes = 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			slashes++
			inArg = true
		case c == '"':
			cur.WriteString(strings.Repeat(`\`, slashes/2))
			if slashes%2 == 1 {
				cur.WriteByte('"')
			} else if quoted && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteByte('"') // "" inside quotes is a literal quote
				i++
			} else {
				quoted = !quoted
			}
			slashes = 0
			inArg = true
		case (c == ' ' || c == '\t') && !quoted:
			flush()
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			flush()
			cur.WriteByte(c)
			inArg = true
		}
	}
	flush()
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// SameCommand reports whether an installed service's command line (words,
// program first) runs exe with args. Windows paths compare without case;
// elsewhere exactly.
func SameCommand(installed []string, exe string, args []string, foldCase bool) bool {
	if len(installed) != len(args)+1 {
		return false
	}
	eq := func(a, b string) bool {
		if foldCase {
			return strings.EqualFold(a, b)
		}
		return a == b
	}
	if !eq(installed[0], exe) {
		return false
	}
	for i, a := range args {
		// Arguments that are paths (the config) are as case-insensitive as
		// the program on Windows.
		if !eq(installed[i+1], a) {
			return false
		}
	}
	return true
}

// waitHint is the SCM wait hint for a pending state that may take budget,
// checked every tick: long enough that one missed tick does not make the
// SCM give up, short enough that a hung service is noticed.
func waitHint(tick time.Duration) time.Duration { return 4 * tick }

// serviceOutcome decides how the Windows service reports the end of the
// agent's run function, which returned err. reason is what to log (nil when
// nothing went wrong); fail says whether to stop with a service-specific exit
// code, which makes the SCM run the recovery actions: with
// fFailureActionsOnNonCrashFailures they are queued whenever the service
// enters SERVICE_STOPPED with a dwWin32ExitCode other than ERROR_SUCCESS.
//
//   - After Stop or Shutdown (stopAsked) the exit is clean even if draining
//     failed: a failure code would have the SCM restart a service an operator
//     or the system just stopped. The error is still logged.
//   - After the start-up budget ran out (startTimedOut) it is a failure even
//     though the agent, cancelled, returned nil or context.Canceled, so that
//     recovery retries the start.
//   - Otherwise the agent stopped by itself: always a failure.
func serviceOutcome(err error, stopAsked, startTimedOut bool, startTimeout time.Duration) (reason error, fail bool) {
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	switch {
	case stopAsked:
		return err, false
	case startTimedOut && err == nil:
		return fmt.Errorf("did not become ready within %v", startTimeout), true
	case err == nil:
		return errors.New("the agent stopped without being asked to"), true
	}
	return err, true
}

// errFailedServiceControllerConnect is ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
// (1063), what StartServiceCtrlDispatcher returns "if the program is being
// run as a console application rather than as a service".
const errFailedServiceControllerConnect = 1063

// notAService reports whether svc.Run's error says the process was not
// started by the service control manager, so it should run interactively.
// This is the detection that works everywhere: svc.IsWindowsService looks
// at the session and the parent process, and is false for a service that
// runs outside session 0 (Wine's services.exe, Windows containers,
// golang/go#56335), which would then never call the dispatcher and be
// killed by the SCM for not starting (error 1053).
func notAService(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && errno == errFailedServiceControllerConnect
}

// stopMargin is what the service allows beyond the agent's own drain
// (RunOptions.StopTimeout) before it gives up waiting: the time to close
// the listener and the stores after the last request.
const stopMargin = 10 * time.Second

// stopBudget is how long the SCM handler waits for the agent to return
// after cancelling it; PreshutdownTimeout asks the SCM for as long at
// shutdown.
func stopBudget(stopTimeout time.Duration) time.Duration { return stopTimeout + stopMargin }

// PreshutdownTimeout is the SERVICE_PRESHUTDOWN_INFO timeout install sets:
// the agent's stop budget plus a few seconds for the SCM's own bookkeeping.
// The default is 10 s since Windows 10 1703 (3 minutes before), shorter
// than the default 30 s drain; without a preshutdown the system gives
// services about 20 s at shutdown.
func PreshutdownTimeout(stopTimeout time.Duration) time.Duration {
	return stopBudget(stopTimeout) + 5*time.Second
}

// tickAction is what the SCM handler does on a tick of its pending-state
// clock.
type tickAction int

const (
	tickNone          tickAction = iota
	tickStartPending             // report StartPending with the next checkpoint
	tickStopPending              // report StopPending with the next checkpoint
	tickStartTimedOut            // the start budget ran out: cancel the agent
	tickStopOverdue              // the agent did not return within the stop budget: report stopped without it
)

// onTick decides the handler's tick: advance the pending checkpoint while
// within budget; when start-up runs out of budget, stop; when stopping runs
// out of budget, stop waiting. Without the last, a hung agent left the
// service STOP_PENDING for ever and recovery never ran.
func onTick(sinceStart, sinceStop time.Duration, running, stopping bool, startTimeout, stopTimeout time.Duration) tickAction {
	switch {
	case stopping && sinceStop < stopBudget(stopTimeout):
		return tickStopPending
	case stopping:
		return tickStopOverdue
	case running:
		return tickNone
	case sinceStart < startTimeout:
		return tickStartPending
	}
	return tickStartTimedOut
}

// errStopOverdue is the agent's outcome when it did not return within the
// stop budget.
func errStopOverdue(stopTimeout time.Duration) error {
	return fmt.Errorf("the agent did not finish stopping within %v; leaving it", stopBudget(stopTimeout))
}

// askDispatcher decides whether Run asks the service dispatcher (svc.Run)
// at all, from the parent process's executable name (known false when it
// could not be found). The SCM starts every service process itself, so a
// process whose parent is anything but services.exe is not a service and
// need not wait for the dispatcher's refusal, which takes about 11 s under
// Wine. Any doubt asks the dispatcher, which then decides.
func askDispatcher(parent string, known bool) bool {
	if !known {
		return true
	}
	base := parent[strings.LastIndexAny(parent, `\/`)+1:]
	return strings.EqualFold(base, "services.exe")
}

// scmStep is one setting install applies to the service. Required steps
// fail the install; an optional one that the SCM refuses (Wine refuses
// several levels with "Invalid level", and a locked-down machine may too)
// becomes a warning, which install prints and doctor reports from the
// service's actual configuration.
type scmStep struct {
	name     string
	required bool
	apply    func() error
}

// applySCMSteps applies steps in order: it stops at a required step that
// fails, and collects the failures of optional ones as warnings.
func applySCMSteps(steps []scmStep) (warnings []string, err error) {
	for _, st := range steps {
		if e := st.apply(); e != nil {
			if st.required {
				return warnings, fmt.Errorf("service: %s: %w", st.name, e)
			}
			warnings = append(warnings, fmt.Sprintf("%s was not applied: %v", st.name, e))
		}
	}
	return warnings, nil
}

// ACE is one access-control entry of a file or folder, as the install-path
// check sees it.
type ACE struct {
	Allow       bool
	InheritOnly bool // INHERIT_ONLY_ACE: applies to children, not the object
	Mask        uint32
	SID         string
}

// Write rights on a file or folder (winnt.h). On a folder FILE_WRITE_DATA
// is "add file" and FILE_APPEND_DATA "add subfolder".
const (
	fileWriteData       = 0x00000002
	fileAppendData      = 0x00000004
	fileWriteEA         = 0x00000010
	fileDeleteChild     = 0x00000040
	fileWriteAttributes = 0x00000100
	accessDelete        = 0x00010000
	writeDAC            = 0x00040000
	writeOwner          = 0x00080000
	genericAll          = 0x10000000
	genericWrite        = 0x40000000
	maximumAllowed      = 0x02000000

	// anyWrite: any way to change the executable, or to plant a file (a
	// DLL) next to it.
	anyWrite = fileWriteData | fileAppendData | fileWriteEA | fileDeleteChild | fileWriteAttributes |
		accessDelete | writeDAC | writeOwner | genericAll | genericWrite | maximumAllowed
	// replaceChild: on a folder further up, the rights that let someone
	// rename or delete the folder below and put another in its place.
	replaceChild = fileDeleteChild | writeDAC | writeOwner | genericAll
)

// trustedWriters may write where the service's executable lives: SYSTEM,
// Administrators, and TrustedInstaller (which owns %ProgramFiles%).
var trustedWriters = map[string]bool{
	"S-1-5-18":     true, // LocalSystem
	"S-1-5-32-544": true, // BUILTIN\Administrators
	"S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464": true, // NT SERVICE\TrustedInstaller
}

// untrustedWriters returns who other than SYSTEM, Administrators and
// TrustedInstaller can change an object with this owner and DACL: the
// owner (who may always rewrite the DACL) if it is someone else, and every
// principal an allow entry gives one of the rights in mask. A nil DACL
// grants everyone everything. Deny entries are not subtracted: the rule
// errs on the side of refusing.
func untrustedWriters(owner string, dacl []ACE, nilDACL bool, mask uint32) []string {
	var out []string
	seen := map[string]bool{}
	add := func(who string) {
		if !seen[who] {
			seen[who] = true
			out = append(out, who)
		}
	}
	if owner != "" && !trustedWriters[owner] {
		add(owner + " (owner)")
	}
	if nilDACL {
		add("Everyone (no DACL)")
	}
	for _, a := range dacl {
		if a.Allow && !a.InheritOnly && a.Mask&mask != 0 && !trustedWriters[a.SID] {
			add(a.SID)
		}
	}
	return out
}

// installPathVerdict turns the writers found on the executable, its folder
// and the folders above into install's answer: nil if only SYSTEM,
// Administrators and TrustedInstaller can change what the service runs.
// exeAndDir are the writers of the executable and of its folder (any
// write), above those of each folder above it (replacing a child).
func installPathVerdict(exe string, exeAndDir map[string][]string, above map[string][]string) error {
	problems := writerProblems(exeAndDir, above)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("service: %s is not writable only by SYSTEM and Administrators, so whoever can write there would run code as SYSTEM (%s); "+
		"install from a folder like %%ProgramFiles%%\\credagent (the MSI does), then run install again", exe, strings.Join(problems, "; "))
}

// trustedFileVerdict is the answer for a file the SYSTEM service trusts
// when it starts: its config, which says whom to serve and where to send
// passwords, and where its logs go (S1 of the Windows audit). nil if only
// SYSTEM, Administrators and TrustedInstaller can change the file, its
// folder, or replace a folder above.
func trustedFileVerdict(what, path string, fileAndDir, above map[string][]string) error {
	problems := writerProblems(fileAndDir, above)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("service: %s %s can be changed by someone other than SYSTEM and Administrators (%s), and the service would trust what they put there; "+
		"keep it under %%ProgramData%%\\credagent as install secures it, or remove those rights", what, path, strings.Join(problems, "; "))
}

// writerProblems lists, path by path in order, who may change what: the
// writers of the file and of its folder, then of each folder above.
func writerProblems(fileAndDir, above map[string][]string) []string {
	var problems []string
	for _, m := range []map[string][]string{fileAndDir, above} {
		paths := make([]string, 0, len(m))
		for p := range m {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			if len(m[p]) > 0 {
				problems = append(problems, p+": "+strings.Join(m[p], ", "))
			}
		}
	}
	return problems
}

// programDataVerdict decides whether install may secure %ProgramData%\
// credagent and use what is in it. ProgramData lets any user create
// folders, so a folder this install did not create, and that was not
// already private (owned by SYSTEM or Administrators, with a protected DACL
// for them alone), may hold what a user planted for the SYSTEM service: a
// config, or a junction where logs will go. Its contents are then refused,
// not adopted.
func programDataVerdict(dir string, created, wasPrivate bool, children []string) error {
	if created || wasPrivate || len(children) == 0 {
		return nil
	}
	sort.Strings(children)
	if len(children) > 5 {
		children = append(children[:5], "...")
	}
	return fmt.Errorf("service: %s existed before this install and was not private, and it holds %s, which a non-administrator may have put there; "+
		"check and remove them (or the folder), then run install again", dir, strings.Join(children, ", "))
}

// Finding is one line of what Inspect found about the installed service,
// for doctor: Level is "PASS", "WARN" or "FAIL".
type Finding struct {
	Name, Level, Detail, Fix string
}

// scmObserved is what Inspect read back from the service manager; each
// error is the failure to read that item.
type scmObserved struct {
	RecoveryActions    int
	RecoveryErr        error
	NonCrash           bool
	NonCrashErr        error
	SIDUnrestricted    bool
	SIDErr             error
	Delayed            bool
	DelayedErr         error
	Preshutdown        time.Duration
	PreshutdownErr     error
	WantPreshutdown    time.Duration
	ExePathProblem     error
	ExePathOnlyWarning bool // under Wine, which enforces no ACLs
}

const reinstallFix = "run credagent install again from an elevated prompt; if the service manager refuses the setting, the service works without it"

// evaluateSCM turns what was read into doctor's lines. The recovery
// actions are required (FAIL without them); the optional settings install
// may have had refused are WARN, as is a setting that cannot be read.
func evaluateSCM(o scmObserved) []Finding {
	var out []Finding
	switch {
	case o.RecoveryErr != nil:
		out = append(out, Finding{"service recovery", "FAIL", "the recovery actions cannot be read: " + o.RecoveryErr.Error(), reinstallFix})
	case o.RecoveryActions < len(Recovery.Steps):
		out = append(out, Finding{"service recovery", "FAIL", fmt.Sprintf("%d restart actions, want %d: a failed agent may stay down", o.RecoveryActions, len(Recovery.Steps)), reinstallFix})
	default:
		out = append(out, Finding{"service recovery", "PASS", fmt.Sprintf("%d restart actions", o.RecoveryActions), ""})
	}
	optional := func(name string, err error, ok bool, detail string) {
		switch {
		case err != nil:
			out = append(out, Finding{name, "WARN", "cannot be read: " + err.Error(), reinstallFix})
		case !ok:
			out = append(out, Finding{name, "WARN", "not set: " + detail, reinstallFix})
		default:
			out = append(out, Finding{name, "PASS", detail, ""})
		}
	}
	optional("service recovery on non-crash failures", o.NonCrashErr, o.NonCrash, "a start that fails is retried by the recovery actions")
	optional("service SID", o.SIDErr, o.SIDUnrestricted, "NT SERVICE\\credagent in the service's token")
	optional("service delayed start", o.DelayedErr, o.Delayed, "automatic start after the boot-critical services")
	optional("service preshutdown", o.PreshutdownErr, o.Preshutdown >= o.WantPreshutdown,
		fmt.Sprintf("%v to drain at shutdown (want at least %v)", o.Preshutdown, o.WantPreshutdown))
	switch {
	case o.ExePathProblem == nil:
		out = append(out, Finding{"service executable", "PASS", "writable only by SYSTEM and Administrators", ""})
	case o.ExePathOnlyWarning:
		out = append(out, Finding{"service executable", "WARN", o.ExePathProblem.Error() + " (Wine enforces no ACLs)", ""})
	default:
		out = append(out, Finding{"service executable", "FAIL", o.ExePathProblem.Error(), "reinstall from %ProgramFiles%\\credagent (the MSI), or remove the write rights of the principals named"})
	}
	return out
}
