package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/installer"
)

func TestRecoveryPolicy(t *testing.T) {
	want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute}
	var got []time.Duration
	for _, s := range Recovery.Steps {
		got = append(got, s.Delay)
	}
	if !reflect.DeepEqual(got, want) || Recovery.ResetPeriod != 24*time.Hour || !Recovery.OnNonCrashFailures {
		t.Fatalf("recovery = %+v", Recovery)
	}
}

func TestProgramDataSDDL(t *testing.T) {
	// Owner Administrators, a protected DACL, exactly SYSTEM and
	// Administrators, inherited by files and directories.
	if !strings.HasPrefix(ProgramDataSDDL, "O:BAD:P(") {
		t.Fatalf("SDDL %q: want owner BA and a protected DACL", ProgramDataSDDL)
	}
	aces := strings.Split(strings.TrimSuffix(strings.TrimPrefix(ProgramDataSDDL, "O:BAD:P("), ")"), ")(")
	want := []string{"A;OICI;FA;;;SY", "A;OICI;FA;;;BA"}
	if !reflect.DeepEqual(aces, want) {
		t.Fatalf("ACEs %q, want %q", aces, want)
	}
}

func TestWindowsCommandLineRoundTrip(t *testing.T) {
	cases := []struct {
		exe  string
		args []string
		want string
	}{
		{`C:\Program Files\credagent\credagent.exe`, ServiceArgs(`C:\ProgramData\credagent\config.yaml`),
			`"C:\Program Files\credagent\credagent.exe" run --config C:\ProgramData\credagent\config.yaml`},
		{`C:\ca\credagent.exe`, []string{"run", "--config", `C:\Some Dir\c.yaml`},
			`C:\ca\credagent.exe run --config "C:\Some Dir\c.yaml"`},
		{`C:\ca\credagent.exe`, []string{`a"b`, `tail\ `, ""}, `C:\ca\credagent.exe "a\"b" "tail\ " ""`},
		{`C:\ca\credagent.exe`, []string{`dir\`, `with space\`}, `C:\ca\credagent.exe dir\ "with space\\"`},
	}
	for _, c := range cases {
		got := WindowsCommandLine(c.exe, c.args)
		if got != c.want {
			t.Errorf("WindowsCommandLine = %s\nwant %s", got, c.want)
		}
		back := SplitWindowsCommandLine(got)
		if !SameCommand(back, c.exe, c.args, true) {
			t.Errorf("split(%s) = %q", got, back)
		}
	}
}

func TestSameCommand(t *testing.T) {
	args := ServiceArgs(`C:\ProgramData\credagent\config.yaml`)
	inst := SplitWindowsCommandLine(`"c:\program files\CREDAGENT\credagent.exe" run --config c:\programdata\credagent\config.yaml`)
	if !SameCommand(inst, `C:\Program Files\credagent\credagent.exe`, args, true) {
		t.Error("case-insensitive Windows paths differ")
	}
	if SameCommand(inst, `C:\Program Files\credagent\credagent.exe`, args, false) {
		t.Error("case-sensitive compare matched")
	}
	if SameCommand(SplitWindowsCommandLine(`C:\other\agent.exe run`), `C:\other\agent.exe`, args, true) {
		t.Error("different args matched")
	}
	// The shipped unit is what `credagent install` of /usr/bin/credagent
	// with the default config considers the same service.
	words, ok := installer.ParseExecStart(installer.SystemdUnit)
	if !ok || !SameCommand(words, installer.UnitExecPath, ServiceArgs("/etc/credagent/config.yaml"), false) {
		t.Errorf("packaged unit runs %q", words)
	}
}

func testKey(t *testing.T) (pemKey, b64 string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), base64.StdEncoding.EncodeToString(der)
}

func TestNormalizePortalKey(t *testing.T) {
	p, b := testKey(t)
	oneLine := strings.ReplaceAll(strings.TrimSpace(p), "\n", " ")
	for name, in := range map[string]string{"pem": p, "base64": b, "pem on one line": oneLine} {
		got, err := NormalizePortalKey(in)
		if err != nil || got != p {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, p)
		}
	}
	if _, err := NormalizePortalKey("not a key"); err == nil {
		t.Error("accepted garbage")
	}
}

func TestSeedConfig(t *testing.T) {
	p, _ := testKey(t)
	for name, base := range map[string]string{
		"default":     installer.DefaultConfig,
		"with portal": "log:\n  level: debug\nportal:\n",
		"with keys":   "# keep me\nportal:\n  signing_keys: []\n",
	} {
		out, err := SeedConfig([]byte(base), p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := config.Parse(config.Default(), out)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		if len(c.Portal.SigningKeys) != 1 || strings.TrimSpace(c.Portal.SigningKeys[0]) != strings.TrimSpace(p) {
			t.Fatalf("%s: keys %q", name, c.Portal.SigningKeys)
		}
		again, err := SeedConfig(out, p)
		if err != nil || string(again) != string(out) {
			t.Errorf("%s: seeding twice changed the file:\n%s", name, again)
		}
		if strings.HasPrefix(base, "# keep me") && !strings.Contains(string(out), "# keep me") {
			t.Errorf("%s: comment lost", name)
		}
	}
	if _, err := SeedConfig([]byte("bogus_key: 1\n"), ""); err == nil {
		t.Error("an invalid config was accepted")
	}
	if _, err := SeedConfig([]byte(installer.DefaultConfig), ""); err != nil {
		t.Errorf("the default config does not load: %v", err)
	}
}

func TestRunCancelReturnsNil(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, func(ctx context.Context, h Hooks) error {
			h.Ready()
			h.Ready() // a second call is harmless
			<-ctx.Done()
			return ctx.Err()
		}, RunOptions{})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestRunStartFailure(t *testing.T) {
	err := Run(context.Background(), func(ctx context.Context, h Hooks) error {
		return fmt.Errorf("key store: %w", errBoom)
	}, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Run = %v", err)
	}
}

var errBoom = fmt.Errorf("boom")

// TestServiceOutcome: a stop asked by the SCM never ends in a failure exit
// code (the recovery actions would restart the service), and a start that
// timed out always does.
func TestServiceOutcome(t *testing.T) {
	boom := fmt.Errorf("boom")
	for _, c := range []struct {
		name                     string
		err                      error
		stopAsked, startTimedOut bool
		wantReason               bool
		wantFail                 bool
	}{
		{"stopped cleanly", nil, true, false, false, false},
		{"stopped, cancelled", fmt.Errorf("run: %w", context.Canceled), true, false, false, false},
		{"stopped, drain failed", boom, true, false, true, false},
		{"start timed out, returned nil", nil, false, true, true, true},
		{"start timed out, cancelled", context.Canceled, false, true, true, true},
		{"start timed out, error", boom, false, true, true, true},
		{"could not start", boom, false, false, true, true},
		{"stopped by itself", nil, false, false, true, true},
	} {
		reason, fail := serviceOutcome(c.err, c.stopAsked, c.startTimedOut, 90*time.Second)
		if (reason != nil) != c.wantReason || fail != c.wantFail {
			t.Errorf("%s: serviceOutcome = (%v, %v), want reason %v, fail %v", c.name, reason, fail, c.wantReason, c.wantFail)
		}
	}
}
