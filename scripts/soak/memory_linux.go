package main

import (
	"fmt"
	"strings"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// passwordCopies counts, once the callers have stopped, the copies of every
// password the soak served that are still in the agent's memory, as root
// could read them (rig.CountInMemory). The agent wipes the buffers it owns;
// the standard library keeps, per open CCP connection, the last response in
// its TLS record buffer and in net/http's read buffer, out of the agent's
// reach. So the bound is two copies per connection the agent held: the most
// it held at any sample (a client replaced by a certificate rotation, a
// store re-delivery or a reload keeps its connections until their requests
// end), and at least
// ccp.DefaultPoolSize to each replica, however many resolutions the soak
// made: a copy left per resolution would show as hundreds or thousands.
// Buffers of connections closed between samples are garbage that is not
// wiped, so the bound is not tight; the bench's password_copies_* figures
// are the exact count, against agent/ccp alone.
func (s *soak) passwordCopies() check {
	s.ccpMu.Lock()
	pws := append([]string(nil), s.passwords...)
	s.ccpMu.Unlock()
	conns := s.p.CCPConnCap
	s.mu.Lock()
	for _, smp := range s.samples {
		conns = max(conns, smp.CCPConns)
	}
	s.mu.Unlock()
	bound := 2 * conns
	c := check{Name: "copies of the served passwords in the agent's memory", Limit: float64(bound)}
	needles := make([][]byte, len(pws))
	for i, pw := range pws {
		needles[i] = []byte(pw)
	}
	found, err := rig.CountInMemory(s.agent.Pid(), needles...)
	if err != nil {
		c.Detail = "could not read the agent's memory: " + err.Error()
		return c
	}
	total := 0
	var per []string
	for i, f := range found {
		total += len(f)
		if len(f) > 0 {
			per = append(per, fmt.Sprintf("password %d of %d: %d", i+1, len(pws), len(f)))
		}
	}
	c.Value, c.Pass = float64(total), total <= bound
	c.Detail = fmt.Sprintf("%d passwords served; bound: 2 per CCP connection the agent held (%d: the most at any sample, at least %d to each of %d replicas); %s",
		len(pws), conns, ccp.DefaultPoolSize, len(s.replicas), strings.Join(per, ", "))
	if len(per) == 0 {
		c.Detail += "none found"
	}
	return c
}
