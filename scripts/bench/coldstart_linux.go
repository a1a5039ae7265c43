package main

import (
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"path/filepath"
	"time"

	"github.com/credagent/credagent/agent/localapi/client"
)

// coldApps is how many applications the cold-start figure has in its state.
const coldApps = 100

// coldStart measures bin/credagent from exec to "listening" with 100 sealed
// applications in its state directory, alternating with a dev dir that has
// its machine key but no deliveries.
func (h *harness) coldStart() error {
	dir0 := filepath.Join(h.root, "cold0")
	dir100 := filepath.Join(h.root, "cold100")

	// The empty one: start once so that the machine key and the dev signing
	// key exist, as they do on any enrolled machine.
	p, _, _, err := h.startAgent(dir0, "cold0-init")
	if err != nil {
		return err
	}
	if err := p.Stop(15 * time.Second); err != nil {
		return err
	}

	// The full one: 100 applications (DemoApp and 99 more with the same
	// certificate), the store and the credential, applied by a running
	// agent, which is then stopped.
	p, sock, _, err := h.startAgent(dir100, "cold100-init")
	if err != nil {
		return err
	}
	port, err := h.newPortal(dir100)
	if err != nil {
		return err
	}
	if err := port.deliverBasics(h); err != nil {
		return err
	}
	for i := 2; i <= coldApps; i++ {
		if err := port.drop(fmt.Sprintf("BenchApp%03d", i), port.app); err != nil {
			return err
		}
	}
	c := client.New(sock)
	deadline := time.Now().Add(45 * time.Second)
	for {
		st, err := c.Status(h.ctx)
		if err == nil && len(st.Applications) >= coldApps {
			break
		}
		if time.Now().After(deadline) || h.ctx.Err() != nil {
			n := -1
			if st != nil {
				n = len(st.Applications)
			}
			return fmt.Errorf("the agent applied %d of %d applications in time (err %v)", n, coldApps, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Close()
	if err := p.Stop(15 * time.Second); err != nil {
		return err
	}

	var full, empty []float64
	for r := range h.rounds {
		for i := range 2 {
			dir, name := dir100, "cold100"
			if (i+r)%2 == 1 {
				dir, name = dir0, "cold0"
			}
			p, sock, ready, err := h.startAgent(dir, fmt.Sprintf("%s-%d", name, r+1))
			if err != nil {
				return err
			}
			d := rig.MS(ready.Sub(p.Started))
			if r == 0 && dir == dir100 {
				c := client.New(sock)
				st, err := c.Status(h.ctx)
				c.Close()
				if err != nil {
					p.Stop(15 * time.Second)
					return err
				}
				if len(st.Applications) != coldApps {
					p.Stop(15 * time.Second)
					return fmt.Errorf("the restarted agent has %d applications, not %d", len(st.Applications), coldApps)
				}
			}
			if err := p.Stop(15 * time.Second); err != nil {
				return err
			}
			if dir == dir100 {
				full = append(full, d)
			} else {
				empty = append(empty, d)
			}
		}
		fmt.Printf("   round %d: %d apps %.1f ms, none %.1f ms\n", r+1, coldApps, full[r], empty[r])
	}
	h.rep.add(&figure{Key: "cold_start_ms", Unit: "ms", Value: rig.Median(full), Rounds: full, Baseline: rig.Median(empty), BaselineRounds: empty,
		BaselineName: "same, no deliveries in its state",
		Method: fmt.Sprintf("from exec of bin/credagent run --dev to its \"listening\" line (printed once the state is rebuilt and the socket listens), "+
			"with %d sealed applications, a store and a credential in its state directory (each record is verified and opened again with "+
			"the file key store); %d rounds alternating with a dev dir that has its keys but no deliveries; median of the rounds.", coldApps, h.rounds),
		goal: &goal{"<", 300}})
	return nil
}
