package rig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Found is where CountInMemory found a needle: the mapping's start address
// and its name in /proc/<pid>/maps (a path, "[heap]", "[stack]", or empty
// for anonymous memory, which is where the Go heap lives).
type Found struct {
	Mapping string
	Start   uint64
	Offset  uint64 // from the start of the mapping
}

// CountInMemory finds every occurrence of each needle in the readable
// memory of process pid, as an attacker with root (or ptrace rights over
// the process) could: every readable mapping in /proc/<pid>/maps, read
// through /proc/<pid>/mem, once for all the needles. It needs the same
// rights: root, or CAP_SYS_PTRACE where the process made itself undumpable
// (credagent does). found[i] is where needles[i] is.
//
// Occurrences of one needle do not overlap. Mappings the kernel will not
// read ([vvar], [vsyscall], device memory) are skipped.
func CountInMemory(pid int, needles ...[]byte) (found [][]Found, err error) {
	if len(needles) == 0 {
		return nil, errors.New("CountInMemory: no needle")
	}
	for _, n := range needles {
		if len(n) == 0 {
			return nil, errors.New("CountInMemory: empty needle")
		}
	}
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	found = make([][]Found, len(needles))
	readAny := false
	buf := make([]byte, 1<<20)
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// 7f3c2a000000-7f3c2a021000 rw-p 00000000 00:00 0     [heap]
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[1][0] != 'r' {
			continue
		}
		name := ""
		if len(f) >= 6 {
			name = f[5]
		}
		if name == "[vvar]" || name == "[vsyscall]" || name == "[vvar_vclock]" {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("CountInMemory: bad maps line %q", sc.Text())
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("CountInMemory: bad maps line %q", sc.Text())
		}
		// A mapping can go away between the two reads, or be one the
		// kernel refuses (I/O memory): what was read of it counts, the
		// rest is skipped, as a reader would.
		hits, n, _ := scanRange(mem, start, end, needles, buf)
		readAny = readAny || n > 0
		for i, offs := range hits {
			for _, off := range offs {
				found[i] = append(found[i], Found{Mapping: name, Start: start, Offset: off})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !readAny {
		return nil, fmt.Errorf("CountInMemory: could not read any memory of process %d (ptrace rights?)", pid)
	}
	return found, nil
}

// scanRange reads [start, end) of mem in chunks of len(buf), keeping the
// longest needle's length less one byte between chunks so that a needle
// across a chunk boundary is found, and returns, for each needle, the
// offsets (from start) of its non-overlapping occurrences, and the bytes
// read.
func scanRange(mem io.ReaderAt, start, end uint64, needles [][]byte, buf []byte) ([][]uint64, uint64, error) {
	hits := make([][]uint64, len(needles))
	keep := 0
	for _, n := range needles {
		keep = max(keep, len(n)-1)
	}
	carry := 0                               // bytes at the front of buf from the last chunk
	base := start                            // address of buf[0]
	nextFree := make([]uint64, len(needles)) // no occurrence may start before this (non-overlapping)
	var read uint64
	for pos := start; pos < end; {
		want := min(uint64(len(buf)-carry), end-pos)
		n, err := mem.ReadAt(buf[carry:carry+int(want)], int64(pos))
		if n <= 0 {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return hits, read, err
		}
		read += uint64(n)
		pos += uint64(n)
		data := buf[:carry+n]
		for k, needle := range needles {
			for i := 0; ; {
				j := bytes.Index(data[i:], needle)
				if j < 0 {
					break
				}
				at := base + uint64(i+j)
				if at >= nextFree[k] {
					hits[k] = append(hits[k], at-start)
					nextFree[k] = at + uint64(len(needle))
				}
				i += j + 1
			}
		}
		carry = min(keep, len(data))
		copy(buf, data[len(data)-carry:])
		base = pos - uint64(carry)
	}
	return hits, read, nil
}
