package service

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestApplySCMSteps(t *testing.T) {
	invalid := errors.New("Invalid level.")
	var ran []string
	step := func(name string, required bool, err error) scmStep {
		return scmStep{name, required, func() error { ran = append(ran, name); return err }}
	}
	// Wine refuses the optional levels: install goes on, with warnings.
	w, err := applySCMSteps([]scmStep{
		step("recovery", true, nil),
		step("non-crash", false, invalid),
		step("sid", false, invalid),
		step("eventlog", false, nil),
	})
	if err != nil || len(w) != 2 || !strings.Contains(w[0], "non-crash") || !strings.Contains(w[1], "Invalid level") {
		t.Fatalf("optional refusals: warnings %q, err %v", w, err)
	}
	if strings.Join(ran, ",") != "recovery,non-crash,sid,eventlog" {
		t.Fatalf("ran %v: every step must be tried", ran)
	}
	// The recovery actions stay required.
	ran = nil
	_, err = applySCMSteps([]scmStep{step("recovery", true, invalid), step("sid", false, nil)})
	if err == nil || !errors.Is(err, invalid) || !strings.Contains(err.Error(), "recovery") {
		t.Fatalf("required refusal: err %v", err)
	}
	if len(ran) != 1 {
		t.Fatalf("ran %v after a required step failed", ran)
	}
}

const (
	users   = "S-1-5-32-545"
	authed  = "S-1-5-11"
	alice   = "S-1-5-21-1-2-3-1001"
	trusted = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
)

func TestUntrustedWriters(t *testing.T) {
	// %ProgramFiles%\credagent: TrustedInstaller owns; SYSTEM and
	// Administrators full; Users read and execute; CREATOR OWNER inherit-only.
	programFiles := []ACE{
		{true, false, 0x1F01FF, "S-1-5-18"},
		{true, false, 0x1F01FF, "S-1-5-32-544"},
		{true, false, 0x1200A9, users},
		{true, true, 0x10000000, "S-1-3-0"},
		{true, false, 0x1F01FF, trusted},
	}
	if w := untrustedWriters(trusted, programFiles, false, anyWrite); len(w) != 0 {
		t.Errorf("Program Files: writers %v", w)
	}
	// A user's Downloads folder.
	downloads := []ACE{{true, false, 0x1F01FF, alice}, {true, false, 0x1F01FF, "S-1-5-18"}}
	if w := untrustedWriters(alice, downloads, false, anyWrite); len(w) != 2 {
		t.Errorf("Downloads: writers %v, want the owner and the ACE", w)
	}
	// C:\ lets Authenticated Users add folders (FILE_APPEND_DATA): not a
	// way to replace C:\Program Files, so not counted above the folder.
	root := []ACE{{true, false, fileAppendData | 0x1200A9, authed}, {true, false, 0x1F01FF, "S-1-5-32-544"}}
	if w := untrustedWriters("S-1-5-18", root, false, replaceChild); len(w) != 0 {
		t.Errorf("C:\\ as a folder above: %v", w)
	}
	if w := untrustedWriters("S-1-5-18", root, false, anyWrite); len(w) != 1 || w[0] != authed {
		t.Errorf("C:\\ as the executable's own folder: %v (planting a DLL next to it)", w)
	}
	// A deny entry is not subtracted; no DACL is everyone.
	if w := untrustedWriters("S-1-5-18", nil, true, anyWrite); len(w) != 1 {
		t.Errorf("no DACL: %v", w)
	}
	// Generic write and write-DAC count.
	for _, m := range []uint32{genericWrite, writeDAC, writeOwner, genericAll, accessDelete} {
		if w := untrustedWriters("S-1-5-18", []ACE{{true, false, m, users}}, false, anyWrite); len(w) != 1 {
			t.Errorf("mask %#x not counted", m)
		}
	}
}

func TestInstallPathVerdict(t *testing.T) {
	exe := `C:\Program Files\credagent\credagent.exe`
	if err := installPathVerdict(exe, map[string][]string{exe: nil, `C:\Program Files\credagent`: nil},
		map[string][]string{`C:\Program Files`: nil, `C:\`: nil}); err != nil {
		t.Fatalf("Program Files refused: %v", err)
	}
	err := installPathVerdict(`C:\Users\alice\Downloads\credagent.exe`,
		map[string][]string{`C:\Users\alice\Downloads\credagent.exe`: {alice + " (owner)"}}, nil)
	if err == nil || !strings.Contains(err.Error(), alice) || !strings.Contains(err.Error(), "ProgramFiles") {
		t.Fatalf("Downloads accepted or unclear: %v", err)
	}
	if err := installPathVerdict(exe, nil, map[string][]string{`C:\Program Files`: {users}}); err == nil {
		t.Fatal("a folder above that users can replace children of was accepted")
	}
}

// TestTrustedFileVerdict: the config and the log folders the SYSTEM
// service trusts at start (S1) follow the install path's rule.
func TestTrustedFileVerdict(t *testing.T) {
	cfg := `C:\ProgramData\credagent\config.yaml`
	for _, tt := range []struct {
		name              string
		fileAndDir, above map[string][]string
		want              []string // in the error; none: accepted
	}{
		{"secured by install", map[string][]string{cfg: nil, `C:\ProgramData\credagent`: nil}, map[string][]string{`C:\ProgramData`: nil, `C:\`: nil}, nil},
		{"planted by a user", map[string][]string{cfg: {alice + " (owner)"}}, nil, []string{"the config file", alice, cfg}},
		{"folder users can write", map[string][]string{`C:\ProgramData\credagent`: {users}}, nil, []string{users}},
		{"a folder above users can replace", nil, map[string][]string{`C:\ProgramData`: {users}}, []string{`C:\ProgramData: ` + users}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := trustedFileVerdict("the config file", cfg, tt.fileAndDir, tt.above)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestProgramDataVerdict(t *testing.T) {
	dir := `C:\ProgramData\credagent`
	for _, c := range []struct {
		name                string
		created, wasPrivate bool
		children            []string
		wantErr             bool
	}{
		{"created by this install", true, false, nil, false},
		{"ours from before (upgrade)", false, true, []string{"config.yaml", "state"}, false},
		{"pre-created by someone, empty", false, false, nil, false},
		{"pre-created by someone, with a planted config and log junction", false, false, []string{"config.yaml", "log"}, true},
	} {
		err := programDataVerdict(dir, c.created, c.wasPrivate, c.children)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v", c.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "config.yaml") {
			t.Errorf("%s: %v does not name what it refuses", c.name, err)
		}
	}
}

func TestEvaluateSCM(t *testing.T) {
	invalid := errors.New("Invalid level.")
	good := scmObserved{RecoveryActions: 3, NonCrash: true, SIDUnrestricted: true, Delayed: true,
		Preshutdown: time.Minute, WantPreshutdown: 45 * time.Second}
	for _, f := range evaluateSCM(good) {
		if f.Level != "PASS" {
			t.Errorf("good service: %+v", f)
		}
	}
	// Wine: optional levels unreadable are WARN, never FAIL.
	wine := good
	wine.NonCrashErr, wine.SIDErr, wine.DelayedErr, wine.PreshutdownErr = invalid, invalid, invalid, invalid
	wine.ExePathProblem, wine.ExePathOnlyWarning = errors.New("writable"), true
	levels := map[string]string{}
	for _, f := range evaluateSCM(wine) {
		levels[f.Name] = f.Level
	}
	for name, lvl := range levels {
		want := "WARN"
		if name == "service recovery" {
			want = "PASS"
		}
		if lvl != want {
			t.Errorf("Wine: %s is %s, want %s", name, lvl, want)
		}
	}
	// Missing recovery actions and a writable executable fail.
	bad := good
	bad.RecoveryActions = 0
	bad.ExePathProblem = errors.New("writable by Users")
	bad.Preshutdown = 10 * time.Second
	levels = map[string]string{}
	for _, f := range evaluateSCM(bad) {
		levels[f.Name] = f.Level
	}
	if levels["service recovery"] != "FAIL" || levels["service executable"] != "FAIL" || levels["service preshutdown"] != "WARN" {
		t.Errorf("bad service: %v", levels)
	}
}
