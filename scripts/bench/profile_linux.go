package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// profileAgent explains missed goals: it replaces bin/credagent by the same
// daemon run inside this harness's child-agent (same dev dir, same config),
// CPU-profiles it under the 64-caller load and then under one sequential
// caller, and writes the top of each profile to bench/profile-agent.txt.
func (h *harness) profileAgent() error {
	if h.agent != nil {
		if err := h.agent.Stop(15 * time.Second); err != nil {
			return err
		}
		h.agent = nil
	}
	var text strings.Builder
	fmt.Fprintf(&text, "CPU profiles of the agent's daemon (scripts/bench child-agent: the same code and dev config as bin/credagent run --dev),\n"+
		"written by make bench because these goals were missed: %s.\n", strings.Join(h.profileReasons, ", "))
	loads := []struct {
		name string
		run  func() (string, error)
	}{
		{"concurrent", func() (string, error) {
			rps, _, err := h.concurrent(h.resolveAgent, callers, 4*time.Second, 400000)
			return fmt.Sprintf("%d concurrent callers for 4 s: %.0f resolutions/s while profiled", callers, rps), err
		}},
		{"sequential", func() (string, error) {
			lat, err := h.sequential(h.resolveAgent, 3*time.Second, 20000)
			s := rig.SortedCopy(lat)
			return fmt.Sprintf("one sequential caller for 3 s: %d resolutions, p50 %.0f µs, p99 %.0f µs while profiled",
				len(s), rig.US(rig.Percentile(s, 50)), rig.US(rig.Percentile(s, 99))), err
		}},
	}
	for _, l := range loads {
		prof := filepath.Join(h.root, "agent-"+l.name+".pprof")
		p, err := rig.StartProc("profiled agent", filepath.Join(h.root, "agent-profiled-"+l.name+".log"), h.self, childAgent, h.agentDir, prof)
		if err != nil {
			return err
		}
		if _, _, err := p.WaitLine("credagent (dev) listening on ", 30*time.Second); err != nil {
			return err
		}
		h.api.Close() // connections to the previous agent
		if _, _, err := h.concurrent(h.resolveAgent, callers, 300*time.Millisecond, 20000); err != nil {
			p.Stop(10 * time.Second)
			return fmt.Errorf("warm-up: %w", err)
		}
		what, err := l.run()
		if err != nil {
			p.Stop(10 * time.Second)
			return err
		}
		tops, err := h.stopAndTop(p, prof)
		if err != nil {
			return err
		}
		fmt.Fprintf(&text, "\n######## %s\n\n%s", what, tops)
		h.rep.Notes = append(h.rep.Notes, "CPU profile of the agent, "+what+": bench/profile-agent.txt")
		fmt.Printf("   %s\n", what)
	}
	out := filepath.Join(h.outDir, "profile-agent.txt")
	if err := os.WriteFile(out, []byte(text.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("   wrote %s\n", out)
	return nil
}

// stopAndTop stops the profiled child p, which writes its CPU profile prof
// as it exits, and returns the profile's flat and cumulative tops.
func (h *harness) stopAndTop(p *rig.Proc, prof string) (string, error) {
	if err := p.Stop(15 * time.Second); err != nil {
		return "", err
	}
	top, err := pprofTop(h.self, prof, "")
	if err != nil {
		return "", err
	}
	cum, err := pprofTop(h.self, prof, "-cum")
	if err != nil {
		return "", err
	}
	return "== flat\n" + top + "\n== cumulative\n" + cum, nil
}

// pprofTop runs go tool pprof -top on a profile.
func pprofTop(bin, prof, extra string) (string, error) {
	args := []string{"tool", "pprof", "-top", "-nodecount=40"}
	if extra != "" {
		args = append(args, extra)
	}
	args = append(args, bin, prof)
	cmd := exec.Command("go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go tool pprof: %v: %s", err, out.String())
	}
	return out.String(), nil
}

// profileFake explains a missed fakeccp goal: a second fake, CPU-profiled,
// under the same LoadTest, with the top of the profile written to
// bench/profile-fakeccp.txt.
func (h *harness) profileFake() error {
	prof := filepath.Join(h.root, "fakeccp.pprof")
	dir := filepath.Join(h.root, "ccp")
	p, err := rig.StartProc("profiled fakeccp", filepath.Join(h.root, "fakeccp-profiled.log"), h.self, childFake, dir, prof)
	if err != nil {
		return err
	}
	u, _, err := p.WaitLine("listening on ", 20*time.Second)
	if err != nil {
		return err
	}
	res, err := fakeccp.LoadTest(h.ctx, fakeccp.LoadOptions{URL: h.accountsQuery(u), TLSConfig: h.pki.ClientTLSConfig(),
		Concurrency: 32, Duration: 3 * time.Second, Requests: 500000})
	if err != nil {
		p.Stop(10 * time.Second)
		return err
	}
	tops, err := h.stopAndTop(p, prof)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("fakeccp.LoadTest, 32 connections for 3 s: %.0f requests/s while profiled", res.PerSecond)
	text := fmt.Sprintf("CPU profile of the fake CCP (the fakeccp library in scripts/bench child-fakeccp), written by make bench because "+
		"fakeccp_throughput_rps missed its goal.\n%s\n\n%s", what, tops)
	if err := os.WriteFile(filepath.Join(h.outDir, "profile-fakeccp.txt"), []byte(text), 0o644); err != nil {
		return err
	}
	h.rep.Notes = append(h.rep.Notes, "CPU profile of the fake, "+what+": bench/profile-fakeccp.txt")
	fmt.Printf("   %s\n", what)
	return nil
}
