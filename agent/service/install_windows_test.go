package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/credagent/credagent/platform/winver"
	"golang.org/x/sys/windows"
)

// privilegeState reads whether the process token holds and has enabled
// the privilege called name.
func privilegeState(t *testing.T, name string) (held, enabled bool) {
	t.Helper()
	var luid windows.LUID
	np, _ := windows.UTF16PtrFromString(name)
	if err := windows.LookupPrivilegeValue(nil, np, &luid); err != nil {
		t.Fatal(err)
	}
	tok := windows.GetCurrentProcessToken()
	var n uint32
	windows.GetTokenInformation(tok, windows.TokenPrivileges, nil, 0, &n)
	buf := make([]byte, n)
	if err := windows.GetTokenInformation(tok, windows.TokenPrivileges, &buf[0], n, &n); err != nil {
		t.Fatal(err)
	}
	tp := (*windows.Tokenprivileges)(unsafe.Pointer(&buf[0]))
	for _, p := range tp.AllPrivileges() {
		if p.Luid == luid {
			return true, p.Attributes&windows.SE_PRIVILEGE_ENABLED != 0
		}
	}
	return false, false
}

// R5: the privileges install enables are put back as they were.
func TestEnablePrivilegesRestores(t *testing.T) {
	const name = "SeTakeOwnershipPrivilege"
	held, before := privilegeState(t, name)
	if !held {
		t.Skipf("this token does not hold %s", name)
	}
	restore := enablePrivileges(name)
	if _, on := privilegeState(t, name); !on {
		t.Errorf("%s not enabled", name)
	}
	restore()
	if _, after := privilegeState(t, name); after != before {
		t.Errorf("%s enabled %v after restore, %v before", name, after, before)
	}
}

// S1: a directory this install did not create, and that was not private,
// has its contents refused rather than adopted.
func TestSecureProgramDataRefusesPlantedContents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credagent")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("planted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := SecureProgramData(dir)
	if err == nil || !strings.Contains(err.Error(), "config.yaml") {
		t.Fatalf("SecureProgramData over planted contents: %v", err)
	}
	t.Logf("refused as it should be: %v", err)
}

// A directory the install creates is secured through its handle: owner
// Administrators and a protected DACL. A second run (an upgrade) accepts
// its own directory and what is in it.
func TestSecureProgramDataCreatesAndReruns(t *testing.T) {
	winver.SkipUnderWine(t, "Wine's default token is not elevated, and Wine approximates file ACLs from Unix modes")
	if err := RequireAdmin(); err != nil {
		t.Skip("needs an elevated token:", err)
	}
	dir := filepath.Join(t.TempDir(), "credagent")
	if err := SecureProgramData(dir); err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if !isPrivateDescriptor(sd) {
		t.Fatalf("not private after SecureProgramData: %s", sd)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("ours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SecureProgramData(dir); err != nil {
		t.Fatalf("second run over its own directory: %v", err)
	}
}

// A junction where the directory should be is refused, not followed.
func TestSecureProgramDataRefusesAJunction(t *testing.T) {
	winver.SkipUnderWine(t, "Wine creates no symbolic links or junctions")
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "credagent")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("cannot create a directory link here:", err)
	}
	if err := SecureProgramData(link); err == nil || !strings.Contains(err.Error(), "link") {
		t.Fatalf("SecureProgramData through a link: %v", err)
	}
}

// S6: the test binary's own folder (a temp dir the user owns) is not a
// place to install the service from.
func TestInstallPathProblemRefusesAUserFolder(t *testing.T) {
	winver.SkipUnderWine(t, "Wine approximates ACLs from Unix modes")
	exe := filepath.Join(t.TempDir(), "credagent.exe")
	if err := os.WriteFile(exe, []byte("MZ"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := installPathProblem(exe)
	if err == nil {
		t.Fatal("a user's temp folder accepted as an install location")
	}
	t.Logf("refused as it should be: %v", err)
}
