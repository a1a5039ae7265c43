package localsock

import (
	"net"
	"sync"
	"time"

	"golang.org/x/sys/windows"
)

// acceptListener records, for each accepted pipe connection, the client's
// process as it is at connect time: its PID (GetNamedPipeClientProcessId)
// and a handle to it, opened at once. The handle pins the process object,
// so the PID cannot be recycled for another process while the connection
// lives; PeerOf reads the executable through it, and refuses a process
// created after the connection was accepted. Identifying the caller's
// token still waits for its first write (see PeerOf), but when that happens
// no longer decides which process the PID names.
type acceptListener struct {
	net.Listener
}

func wrapListener(ln net.Listener) net.Listener { return acceptListener{ln} }

func (l acceptListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ac := &acceptedConn{Conn: c, accepted: time.Now()}
	if h, err := handleOf(c); err == nil {
		var pid uint32
		if windows.GetNamedPipeClientProcessId(h, &pid) == nil && pid != 0 {
			ac.pid = pid
			if ph, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid); err == nil {
				ac.process = ph
			}
		}
	}
	return ac, nil
}

// acceptedConn is a pipe connection with its client's process recorded at
// accept time.
type acceptedConn struct {
	net.Conn
	accepted  time.Time
	pid       uint32
	process   windows.Handle // 0 if it could not be opened
	closeOnce sync.Once
}

// Fd is the pipe handle, as go-winio's connections expose it.
func (c *acceptedConn) Fd() uintptr {
	if f, ok := c.Conn.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return 0
}

func (c *acceptedConn) Close() error {
	c.closeOnce.Do(func() {
		if c.process != 0 {
			windows.CloseHandle(c.process)
		}
	})
	return c.Conn.Close()
}
