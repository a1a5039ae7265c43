//go:build !windows

package localsocktest

import (
	"os"
	"testing"
)

// SelfIdentity returns this process's uid.
func SelfIdentity(t testing.TB) Self {
	return Self{UIDs: []uint32{uint32(os.Getuid())}}
}
