//go:build !windows

package service

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify(3) messages to systemd's notify socket.
type Notifier struct {
	addr *net.UnixAddr // nil: not under systemd with Type=notify
}

// NewNotifier reads $NOTIFY_SOCKET: a path, or an abstract socket when it
// starts with '@'. Without it every Notify is a no-op.
func NewNotifier() *Notifier { return newNotifier(os.Getenv("NOTIFY_SOCKET")) }

func newNotifier(socket string) *Notifier {
	if socket == "" || (socket[0] != '/' && socket[0] != '@') {
		return &Notifier{}
	}
	// The net package maps a leading '@' to the abstract namespace's NUL.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}
}

// Enabled reports whether there is a socket to notify.
func (n *Notifier) Enabled() bool { return n.addr != nil }

// Notify sends one datagram holding the newline-separated assignments.
func (n *Notifier) Notify(assignments ...string) error {
	if n.addr == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	msg := strings.Join(assignments, "\n")
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// monotonicNow is CLOCK_MONOTONIC, the clock MONOTONIC_USEC is measured on.
func monotonicNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, errors.Join(errors.New("clock_gettime"), err)
	}
	return time.Duration(ts.Nano()), nil
}
