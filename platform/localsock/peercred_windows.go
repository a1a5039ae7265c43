package localsock

import (
	"fmt"
	"net"
)

// peerCred cannot answer on Windows: the client's token is only available
// by impersonation, which Windows allows only after data has been read
// from the pipe. Callers identify the connection at its first request.
func peerCred(net.Conn) (*Identity, error) {
	return nil, fmt.Errorf("localsock.PeerCred: %w before the first read from a named pipe", ErrUnsupported)
}
