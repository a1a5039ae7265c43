package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileAgent explains missed goals: it replaces bin/credagent by the same
// daemon run inside this harness's child-agent (same dev dir, same config),
// CPU-profiles it under the 64-caller load, and writes the top of the
// profile to bench/profile-agent.txt.
func (h *harness) profileAgent() error {
	if h.agent != nil {
		if err := h.agent.stop(15 * time.Second); err != nil {
			return err
		}
		h.agent = nil
	}
	prof := filepath.Join(h.root, "agent.cpu.pprof")
	p, err := startProc("profiled agent", filepath.Join(h.root, "agent-profiled.log"), h.self, childAgent, h.agentDir, prof)
	if err != nil {
		return err
	}
	if _, _, err := p.waitLine("credagent (dev) listening on ", 30*time.Second); err != nil {
		return err
	}
	h.api.Close() // connections to the old agent
	if _, _, err := h.concurrent(h.resolveAgent, callers, 300*time.Millisecond, 20000); err != nil {
		p.stop(10 * time.Second)
		return fmt.Errorf("warm-up: %w", err)
	}
	rps, _, err := h.concurrent(h.resolveAgent, callers, 4*time.Second, 400000)
	if err != nil {
		p.stop(10 * time.Second)
		return err
	}
	if err := p.stop(15 * time.Second); err != nil {
		return err
	}
	top, err := pprofTop(h.self, prof, "")
	if err != nil {
		return err
	}
	cum, err := pprofTop(h.self, prof, "-cum")
	if err != nil {
		return err
	}
	out := filepath.Join(h.outDir, "profile-agent.txt")
	text := fmt.Sprintf("CPU profile of the agent's daemon (scripts/bench child-agent, same code and dev config as bin/credagent run --dev)\n"+
		"under %d concurrent resolutions for 4 s (%.0f/s while profiled), written by make bench because these goals were missed: %s.\n\n"+
		"== flat\n%s\n== cumulative\n%s", callers, rps, strings.Join(h.profileReasons, ", "), top, cum)
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		return err
	}
	h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("CPU profile of the agent under load: bench/profile-agent.txt (%.0f resolutions/s while profiled)", rps))
	fmt.Printf("   wrote %s\n", out)
	return nil
}

// pprofTop runs go tool pprof -top on a profile.
func pprofTop(bin, prof, extra string) (string, error) {
	args := []string{"tool", "pprof", "-top", "-nodecount=35"}
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
