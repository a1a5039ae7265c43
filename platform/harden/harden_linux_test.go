package harden

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Apply changes the whole process (and makes it undumpable), so it runs in a
// child: this test binary again, with applyEnv set.
const applyEnv = "HARDEN_TEST_APPLY"

func TestMain(m *testing.M) {
	if os.Getenv(applyEnv) != "" {
		r := Apply()
		// Read back what the kernel says, independently of Apply.
		status, _ := os.ReadFile("/proc/self/status")
		limits, _ := os.ReadFile("/proc/self/limits")
		json.NewEncoder(os.Stdout).Encode(map[string]any{"report": r, "status": string(status), "limits": string(limits)})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestApply(t *testing.T) {
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), applyEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var got struct {
		Report Report
		Status string
		Limits string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	byName := map[string]Measure{}
	for _, m := range got.Report.Measures {
		byName[m.Name] = m
	}
	for _, name := range []string{NoCoreDumps, NotDumpable} {
		if m := byName[name]; !m.Applied {
			t.Errorf("%s not applied: %s", name, m.Detail)
		}
	}
	if m, ok := byName[MemoryLocked]; !ok {
		t.Error("memory_locked not reported")
	} else if m.Applied && !strings.Contains(got.Status, "VmLck:") {
		t.Error("no VmLck line")
	} else if !m.Applied && m.Detail == "" {
		t.Error("memory_locked failed without a reason")
	}
	for line := range strings.Lines(got.Limits) {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(line); f[4] != "0" || f[5] != "0" {
				t.Errorf("core limit: %q", line)
			}
		}
	}
	t.Logf("report: %+v", got.Report)
}
