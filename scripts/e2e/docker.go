package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// docker runs the docker CLI and returns its standard output, trimmed. The
// error carries standard error.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args[:min(len(args), 3)], " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// execJSON runs the runner in container c and decodes its JSON output.
func execJSON(ctx context.Context, c string, v any, args ...string) error {
	out, err := docker(ctx, append([]string{"exec", c, "/e2e", "runner"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("runner %s in %s: %v: %q", args[0], c, err, out)
	}
	return nil
}

// containerIP is c's address on network net, "" when it has none.
func containerIP(ctx context.Context, c, net string) string {
	ip, err := docker(ctx, "inspect", "-f", `{{with index .NetworkSettings.Networks "`+net+`"}}{{.IPAddress}}{{end}}`, c)
	if err != nil {
		return ""
	}
	return ip
}

// startedAt is when c's process last started.
func startedAt(ctx context.Context, c string) (time.Time, error) {
	s, err := docker(ctx, "inspect", "-f", "{{.State.StartedAt}}", c)
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, s)
}
