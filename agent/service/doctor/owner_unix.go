//go:build !windows

package doctor

import (
	"io/fs"
	"os/user"
	"strconv"
	"syscall"
)

func ownerUID(st fs.FileInfo) (int, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(s.Uid), true
}

func groupName(st fs.FileInfo) (string, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(s.Gid)))
	if err != nil {
		return strconv.Itoa(int(s.Gid)), true
	}
	return g.Name, true
}
