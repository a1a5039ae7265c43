package localsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/Microsoft/go-winio"
	"github.com/credagent/credagent/platform/winver"
	"golang.org/x/sys/windows"
)

// ProtectedPrefix is the pipe namespace in which only Administrators and
// SYSTEM can create pipes, so an unprivileged process cannot create the
// agent's pipe first (or a second instance of it) and pose as the agent.
// Microsoft does not document these "secure prefixes"; the named pipe file
// system enforces them since Windows 10 (James Forshaw, "Named Pipe Secure
// Prefixes", 2017), and Tailscale's service pipe relies on the same one.
// The pipe's DACL must not be the only guard, see pipeSDDLBase.
const ProtectedPrefix = `\\.\pipe\ProtectedPrefix\Administrators\`

func listen(path string, opts ListenOptions) (net.Listener, error) {
	if !strings.HasPrefix(path, `\\.\pipe\`) {
		return nil, fmt.Errorf(`localsock.Listen: %q is not a named pipe (\\.\pipe\...)`, path)
	}
	sddl, err := pipeSDDL(opts)
	if err != nil {
		return nil, fmt.Errorf("localsock.Listen: %w", err)
	}
	if !opts.Dev && !strings.HasPrefix(strings.ToLower(path), strings.ToLower(ProtectedPrefix)) {
		return nil, fmt.Errorf("localsock.Listen: pipe %q must be under %s so it cannot be squatted", path, ProtectedPrefix)
	}
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: sddl})
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_PIPE_BUSY) {
			// go-winio creates the first instance with FILE_CREATE, which
			// fails with access denied if the pipe exists; but access is also
			// denied to a process that is not an administrator under
			// ProtectedPrefix\Administrators.
			return nil, fmt.Errorf("localsock.Listen: %s: %w, or this process may not create it (not SYSTEM or an elevated administrator) (%v)", path, ErrInUse, err)
		}
		return nil, fmt.Errorf("localsock.Listen: %s: %w", path, err)
	}
	if winver.IsWine() {
		takeWineFirstInstance(path)
	}
	return ln, nil
}

// takeWineFirstInstance works around Wine's named pipes. go-winio creates the
// pipe's first instance without read or write access, only to reserve the
// name; Windows puts such an instance in the disconnected state, so clients
// reach only the instances Accept creates. Wine puts it in the listening
// state: the first client connects to it and is never served (Windows 7 and
// Server 2008 R2 do the same, go-winio issues 173, 183 and 313). One
// connection, made right after Listen and dropped at once, uses that instance
// up; later clients reach instances Accept serves. Only under Wine: on
// Windows this would cost a connection for nothing.
func takeWineFirstInstance(path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// An error is left for the real clients to meet: the listener itself
	// is good.
	if c, err := winio.DialPipeContext(ctx, path); err == nil {
		c.Close()
	}
}

// pipeSDDL builds the descriptor for opts.
func pipeSDDL(opts ListenOptions) (string, error) {
	if opts.Dev {
		tok := windows.GetCurrentProcessToken()
		u, err := tok.GetTokenUser()
		if err != nil {
			return "", fmt.Errorf("reading the current user: %w", err)
		}
		return devPipeSDDLFor(u.User.Sid.String()), nil
	}
	sids := make([]string, 0, len(opts.Allow))
	for _, who := range opts.Allow {
		sid, err := toSID(who)
		if err != nil {
			return "", fmt.Errorf("api.pipe_allow: %q: %w", who, err)
		}
		sids = append(sids, sid)
	}
	return pipeSDDLFor(sids), nil
}

// toSID accepts a SID string or an account name.
func toSID(who string) (string, error) {
	if strings.HasPrefix(strings.ToUpper(who), "S-1-") {
		sid, err := windows.StringToSid(who)
		if err != nil {
			return "", err
		}
		return sid.String(), nil
	}
	sid, _, _, err := windows.LookupSID("", who)
	if err != nil {
		return "", err
	}
	return sid.String(), nil
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	// Read and write-data only: what the pipe's DACL grants clients (see
	// pipeSDDLBase); GENERIC_WRITE would also ask for create-instance.
	c, err := winio.DialPipeAccessImpLevel(ctx, path, pipeClientAccess, winio.PipeImpLevelIdentification)
	if err != nil {
		return nil, fmt.Errorf("localsock.Dial: %w", err)
	}
	return c, nil
}

var (
	modadvapi32                     = windows.NewLazySystemDLL("advapi32.dll")
	procImpersonateNamedPipeClient  = modadvapi32.NewProc("ImpersonateNamedPipeClient")
	errCannotImpersonateBeforeWrite = errors.New("the client has not written to the pipe yet")
)

func impersonateNamedPipeClient(h windows.Handle) error {
	r, _, err := procImpersonateNamedPipeClient.Call(uintptr(h))
	if r == 0 {
		if errors.Is(err, windows.ERROR_CANNOT_IMPERSONATE) {
			return fmt.Errorf("%w: %v", errCannotImpersonateBeforeWrite, err)
		}
		return err
	}
	return nil
}

// handleOf returns the pipe handle of a go-winio connection: its connections
// expose the handle through an Fd method, as *os.File does.
func handleOf(conn net.Conn) (windows.Handle, error) {
	f, ok := conn.(interface{ Fd() uintptr })
	if !ok {
		return 0, ErrUnsupported
	}
	return windows.Handle(f.Fd()), nil
}

func peerOf(conn net.Conn) (*Identity, error) {
	h, err := handleOf(conn)
	if err != nil {
		return nil, fmt.Errorf("localsock.PeerOf: %w", err)
	}
	start := time.Now()
	tok, err := clientToken(h)
	if err != nil {
		return nil, fmt.Errorf("localsock.PeerOf: %w", err)
	}
	defer tok.Close()

	id := &Identity{Verified: true}
	u, err := tok.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("localsock.PeerOf: token user: %w", err)
	}
	id.SID = u.User.Sid.String()
	if acct, dom, _, err := u.User.Sid.LookupAccount(""); err == nil {
		id.Username = dom + `\` + acct
	}
	groups, err := tok.GetTokenGroups()
	if err != nil {
		return nil, fmt.Errorf("localsock.PeerOf: token groups: %w", err)
	}
	for _, g := range groups.AllGroups() {
		// Deny-only groups (a filtered admin token) must not grant anything.
		if g.Attributes&windows.SE_GROUP_ENABLED == 0 || g.Attributes&windows.SE_GROUP_USE_FOR_DENY_ONLY != 0 {
			continue
		}
		id.GroupSIDs = append(id.GroupSIDs, g.Sid.String())
	}

	// The process as it was when the client connected (acceptedConn), so
	// that the client cannot choose when its PID is looked up.
	if ac, ok := conn.(*acceptedConn); ok {
		if ac.pid != 0 {
			id.PID = int(ac.pid)
			if exe, ok := imagePathOf(ac.process, ac.accepted); ok {
				id.Exe = exe
				id.PIDGuard = "handle"
			}
		}
		return id, nil
	}
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(h, &pid); err == nil {
		id.PID = int(pid)
		if exe, ok := imagePath(pid, start); ok {
			id.Exe = exe
			id.PIDGuard = "handle"
		}
	}
	return id, nil
}

// clientToken impersonates the pipe client on a locked OS thread, opens the
// thread's token, and reverts. If reverting fails the thread keeps the
// client's identity, so it is left locked and dies with its goroutine rather
// than returning to the scheduler.
func clientToken(h windows.Handle) (windows.Token, error) {
	type result struct {
		tok windows.Token
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := impersonateNamedPipeClient(h); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("ImpersonateNamedPipeClient: %w", err)}
			return
		}
		var tok windows.Token
		thread, _ := windows.GetCurrentThread()
		// openAsSelf: open the token with the agent's own access rights; the
		// client dialled at the Identification level.
		err := windows.OpenThreadToken(thread, windows.TOKEN_QUERY, true, &tok)
		if rerr := windows.RevertToSelf(); rerr != nil {
			if err == nil {
				tok.Close()
			}
			ch <- result{err: fmt.Errorf("RevertToSelf: %w", rerr)}
			return // the thread stays locked and exits with this goroutine
		}
		runtime.UnlockOSThread()
		if err != nil {
			ch <- result{err: fmt.Errorf("OpenThreadToken: %w", err)}
			return
		}
		ch <- result{tok: tok}
	}()
	r := <-ch
	return r.tok, r.err
}

// imagePath returns the executable of pid. The handle pins the process
// object; a process created after notAfter cannot be the one that
// connected, so that case (a recycled pid) is refused.
func imagePath(pid uint32, notAfter time.Time) (string, bool) {
	ph, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return "", false
	}
	defer windows.CloseHandle(ph)
	return imagePathOf(ph, notAfter)
}

// imagePathOf returns the executable of the process ph, refusing a process
// created after notAfter.
func imagePathOf(ph windows.Handle, notAfter time.Time) (string, bool) {
	if ph == 0 {
		return "", false
	}
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(ph, &created, &exited, &kernel, &user); err != nil {
		return "", false
	}
	if !createdInTime(time.Unix(0, created.Nanoseconds()), notAfter) {
		return "", false
	}
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(ph, 0, &buf[0], &n); err != nil {
		return "", false
	}
	return windows.UTF16ToString(buf[:n]), true
}
