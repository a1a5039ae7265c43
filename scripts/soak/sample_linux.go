package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// sample reads the agent from outside: RSS and descriptors from /proc,
// connections to the replicas from /proc/net/tcp, the state directory's
// size, and the Go runtime's figures from the privileged status.
func (s *soak) sample(ctx context.Context) sample {
	pid := s.agent.Pid()
	smp := sample{T: rig.Round3(s.since())}
	if kb, err := rig.ProcStatusKB(pid, "VmRSS"); err == nil {
		smp.RSSMB = rig.Round3(float64(kb) / 1024)
	}
	fds, sockets := openFDs(pid)
	smp.FDs = fds
	smp.CCPConns = tcpConnsTo(pid, sockets, s.ccpPorts)
	smp.FeedConns = tcpConnsTo(pid, sockets, []string{s.feed.port})
	smp.StateBytes = dirSize(s.stateDir)
	smp.StateBound = s.stateBound()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := s.api.Status(ctx); err == nil && st.Runtime != nil {
		smp.Goroutines = st.Runtime.Goroutines
		smp.HeapInuseMB = rig.Round3(float64(st.Runtime.HeapInuseBytes) / mbBytes)
		smp.HeapLiveMB = rig.Round3(float64(st.Runtime.HeapLiveBytes) / mbBytes)
		smp.HeapHeldMB = rig.Round3(float64(st.Runtime.HeapInuseBytes+st.Runtime.HeapFreeBytes+st.Runtime.StackBytes) / mbBytes)
	} else if err != nil && ctx.Err() == nil {
		s.note(fmt.Sprintf("t=%.0fs status: %v", smp.T, err))
	} else if err == nil {
		s.note("the agent's status has no runtime figures: is this bin/credagent older than the soak?")
	}
	return smp
}

// stateBound is what the state directory may hold: the record of each
// object in force (the last delivery of each, unchanged), room for one
// record being replaced, the registration, and the rejected directory at
// its cap: inbox.MaxQuarantinedPerReason files for each reason the
// quarantine can give (delivery's reason codes and the inbox's own), each
// with its reason file, and never more than inbox.MaxQuarantineBytes.
func (s *soak) stateBound() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum, largest int64
	for _, n := range s.recordBytes {
		sum += n
		largest = max(largest, n)
	}
	const reasonFile = 1024
	const reasons = 20 // delivery's 15 reason codes, "error" and the inbox's own, with room
	quarantine := min(int64(reasons*inbox.MaxQuarantinedPerReason)*(s.maxRejected+reasonFile), inbox.MaxQuarantineBytes)
	return sum + largest + s.regBytes + quarantine
}

// openFDs counts the process's descriptors and returns the inodes of its
// sockets.
func openFDs(pid int) (int, map[string]bool) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil
	}
	sockets := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if in, ok := strings.CutPrefix(l, "socket:["); ok {
			sockets[strings.TrimSuffix(in, "]")] = true
		}
	}
	return len(ents), sockets
}

// tcpConnsTo counts the established TCP connections among sockets whose
// remote port is one of ports.
func tcpConnsTo(pid int, sockets map[string]bool, ports []string) int {
	var hexPorts []string
	for _, p := range ports {
		n, _ := strconv.Atoi(p)
		hexPorts = append(hexPorts, fmt.Sprintf("%04X", n))
	}
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "01" {
				continue
			}
			_, port, ok := strings.Cut(fs[2], ":")
			if ok && slices.Contains(hexPorts, port) && sockets[fs[9]] {
				n++
			}
		}
		fh.Close()
	}
	return n
}
