//go:build !linux && !windows

package localsock

import (
	"fmt"
	"net"
)

// Other Unix systems can listen and dial, but the agent identifies callers
// only on Linux and Windows.
func peerOf(net.Conn) (*Identity, error) {
	return nil, fmt.Errorf("localsock.PeerOf: %w on this OS", ErrUnsupported)
}

func peerUID(*net.UnixConn) (uint32, error) { return 0, ErrUnsupported }

func peerCred(net.Conn) (*Identity, error) {
	return nil, fmt.Errorf("localsock.PeerCred: %w on this OS", ErrUnsupported)
}
