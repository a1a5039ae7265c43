package installer

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// need skips a test whose tool is missing, except in CI (CI=true), where
// a missing tool is a failure: CI here has Docker, systemd-analyze and wixl.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func unitDirectives(unit string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		m[k] = append(m[k], v)
	}
	return m
}

// The directives issue 8 requires, with their values.
func TestUnitHardening(t *testing.T) {
	d := unitDirectives(SystemdUnit)
	want := map[string]string{
		"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
		"CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "LimitCORE": "0", "UMask": "0077",
		"StateDirectory": "credagent", "RuntimeDirectory": "credagent", "ConfigurationDirectory": "credagent",
		"DeviceAllow": "/dev/tpmrm0 rw", "DevicePolicy": "closed", "SystemCallFilter": "@system-service",
		"RestrictNamespaces": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"Group": "credagent",
	}
	for k, v := range want {
		if got, ok := d[k]; !ok || len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"PrivateNetwork", "IPAddressDeny", "PrivateUsers", "ProtectProc"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s is set: the agent talks to CCP and identifies callers by uid and /proc", k)
		}
	}
}

func TestExecStartRoundTrip(t *testing.T) {
	args := []string{"run", "--config", "/etc/credagent/config.yaml"}
	words, ok := ParseExecStart(SystemdUnit)
	if !ok || strings.Join(words, " ") != UnitExecPath+" "+strings.Join(args, " ") {
		t.Fatalf("packaged ExecStart = %q", words)
	}
	for _, exe := range []string{"/opt/cred agent/bin/credagent", `/opt/odd"name$%\x`, "/usr/local/bin/credagent"} {
		a := []string{"run", "--config", "/etc/my config/c.yaml"}
		unit := SystemdUnitFor(exe, a)
		got, ok := ParseExecStart(unit)
		if !ok || len(got) != 4 || got[0] != exe || got[3] != a[2] {
			t.Errorf("round trip of %q: %q", exe, got)
		}
		if strings.Count(unit, "\nExecStart=") != 1 || !strings.Contains(unit, "ProtectSystem=strict") {
			t.Errorf("SystemdUnitFor changed more than ExecStart")
		}
	}
}

// systemd-analyze verify (with ExecStart pointing at a binary that exists
// here) and the security score, which the README quotes.
func TestUnitVerifyAndScore(t *testing.T) {
	need(t, "systemd-analyze")
	dir := t.TempDir()
	unit := filepath.Join(dir, "credagent.service")
	self, _ := os.Executable()
	os.WriteFile(unit, []byte(SystemdUnitFor(self, []string{"run", "--config", "/etc/credagent/config.yaml"})), 0o644)
	if out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ := exec.Command("systemd-analyze", "security", "--offline=yes", "systemd/credagent.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for credagent.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no score in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security score: %.1f", score)
	if score > 2.5 {
		t.Errorf("exposure %.1f, was 2.2: a hardening directive was lost", score)
	}
}

// The MSI builds with wixl and has the service and recovery tables.
func TestMSI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Windows binary and an MSI")
	}
	need(t, "wixl", "msiinfo")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, "credagent.exe"), "../agent/cmd/credagent")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	wxs, _ := filepath.Abs("windows/credagent.wxs")
	// wixl wants source paths relative: the module goes beside bin.
	for _, f := range []string{"CredAgent.psd1", "CredAgent.psm1"} {
		b, err := os.ReadFile(filepath.Join("windows", "CredAgent", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, "module"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "module", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wixl := exec.Command("wixl", "-a", "x64", "-D", "Version=1.2.3", "-D", "BinDir=bin", "-D", "ModuleDir=module", "-o", "credagent.msi", wxs)
	wixl.Dir = dir // wixl wants BinDir relative
	if out, err := wixl.CombinedOutput(); err != nil {
		t.Fatalf("wixl: %v\n%s", err, out)
	}
	msi := filepath.Join(dir, "credagent.msi")
	table := func(name string) string {
		out, err := exec.Command("msiinfo", "export", msi, name).CombinedOutput()
		if err != nil {
			t.Fatalf("msiinfo export %s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	row := func(tbl, key string) []string {
		for _, l := range strings.Split(table(tbl), "\n") {
			if f := strings.Split(strings.TrimRight(l, "\r"), "\t"); f[0] == key {
				return f
			}
		}
		t.Fatalf("%s has no row %s:\n%s", tbl, key, table(tbl))
		return nil
	}
	// ServiceInstall: name, own process (16), auto start (2), LocalSystem,
	// and the same command line `credagent install` registers.
	si := row("ServiceInstall", "AgentService")
	if si[1] != "credagent" || si[3] != "16" || si[4] != "2" || si[8] != "LocalSystem" ||
		si[10] != `run --config "[CommonAppDataFolder]credagent\config.yaml"` {
		t.Errorf("ServiceInstall = %q", si)
	}
	// ServiceControl: stop on install and uninstall (0x2|0x20), remove on
	// uninstall (0x80), not started by the MSI, and wait.
	sc := row("ServiceControl", "AgentServiceControl")
	if sc[1] != "credagent" || sc[2] != "162" || sc[4] != "1" {
		t.Errorf("ServiceControl = %q", sc)
	}
	// The recovery/SID/ACL custom action: an EXE from the installed file
	// (18), deferred (1024), not impersonated (2048).
	ca := row("CustomAction", "ConfigureService")
	if ca[1] != "3090" || ca[2] != "credagent.exe" || !strings.HasPrefix(ca[3], "install --configure-only ") ||
		!strings.Contains(ca[3], "[PORTALKEY]") || !strings.Contains(ca[3], "[CONFIG]") {
		t.Errorf("CustomAction = %q", ca)
	}
	seq := row("InstallExecuteSequence", "ConfigureService")
	install := row("InstallExecuteSequence", "InstallServices")
	if seq[1] != "NOT REMOVE" || !(atoi(seq[2]) > atoi(install[2])) {
		t.Errorf("ConfigureService sequenced %q, InstallServices %q", seq, install)
	}
	for _, p := range []string{"PORTALKEY", "CONFIG"} {
		row("Property", p)
	}
	// The PowerShell module, in Program Files\WindowsPowerShell\Modules\CredAgent.
	for _, f := range []string{"CredAgent.psd1", "CredAgent.psm1"} {
		if r := row("File", f); r[1] != "PowerShellModule" || r[2] != f {
			t.Errorf("File %s = %q", f, r)
		}
	}
	if d := row("Directory", "CredAgentModuleDir"); d[1] != "PSModulesDir" || d[2] != "CredAgent" {
		t.Errorf("module directory %q", d)
	}
	if d := row("Directory", "PSModulesDir"); d[1] != "PSDir" || d[2] != "Modules" {
		t.Errorf("Modules directory %q", d)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// The .deb in a Debian container under systemd (scripts/deb-test.sh).
func TestDebInContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the .deb and boots a container")
	}
	need(t, "docker")
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("docker is not usable: %v", err)
		}
		t.Skip("docker is not usable")
	}
	pkg := exec.Command("./scripts/package.sh")
	pkg.Env = append(os.Environ(), "SKIP_MSI=1", "SKIP_RPM=1")
	pkg.Dir = ".."
	if out, err := pkg.CombinedOutput(); err != nil {
		t.Fatalf("package.sh: %v\n%s", err, out)
	}
	// Without an argument deb-test.sh takes the newest .deb in dist/: the
	// one just built.
	cmd := exec.Command("./scripts/deb-test.sh")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("deb-test.sh: %v", err)
	}
}
