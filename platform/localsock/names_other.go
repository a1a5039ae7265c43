//go:build !linux

package localsock

// Only Linux caches account names (see peer_linux.go).
func flushNames() {}
