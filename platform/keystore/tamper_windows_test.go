//go:build windows

package keystore_test

import "github.com/credagent/credagent/platform/keystore/keystoretest"

// fileTampers: the Unix tampering cases (modes, symlinks, hard links, owner)
// do not apply to Windows ACLs; none are run there yet.
func fileTampers(func(string) string) []keystoretest.Tamper { return nil }
