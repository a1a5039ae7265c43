package doctor

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/harden"
)

func levels(rs []Result) string {
	var b []string
	for _, r := range rs {
		b = append(b, string(r.Level))
	}
	return strings.Join(b, ",")
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("log:\n  level: debug\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log:\n  levle: debug\n"), 0o600)

	env := &Env{ConfigPath: good}
	if rs := env.checkConfig(context.Background()); rs[0].Level != Pass || env.Config == nil {
		t.Fatalf("good config: %+v", rs)
	}
	env = &Env{ConfigPath: bad}
	rs := env.checkConfig(context.Background())
	if rs[0].Level != Fail || !strings.Contains(rs[0].Detail, "levle") || rs[0].Fix == "" {
		t.Fatalf("bad config: %+v", rs)
	}
	// Later checks are skipped with a WARN, not a crash.
	all := Run(context.Background(), Checks(env), time.Second)
	if Worst(all) != Fail || len(all) != len(Checks(env)) {
		t.Fatalf("results %+v", all)
	}
}

func TestPrivateDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	os.Mkdir(ok, 0o700)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(ok, link)
	for p, want := range map[string]Level{ok: Pass, open: Fail, file: Fail, link: Fail, filepath.Join(dir, "missing"): Warn} {
		rs := CheckPrivateDir(p)
		if rs[0].Level != want {
			t.Errorf("%s: %+v, want %s", p, rs, want)
		}
		if want != Pass && rs[0].Fix == "" {
			t.Errorf("%s: no fix", p)
		}
	}
}

func TestSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix sockets")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sock")
	if rs := CheckSocket(p, ""); rs[0].Level != Fail {
		t.Fatalf("missing socket: %+v", rs)
	}
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Chmod(p, 0o660)
	if rs := CheckSocket(p, ""); rs[0].Level != Pass {
		t.Fatalf("0660 socket: %+v", rs)
	}
	os.Chmod(p, 0o666)
	if rs := CheckSocket(p, ""); rs[0].Level != Fail {
		t.Fatalf("0666 socket: %+v", rs)
	}
	if rs := CheckSocket(p+"x", "no-such-group-here"); rs[0].Level != Fail {
		t.Fatal("missing")
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := CheckExpiry([]Certificate{
		{AppID: "c-ok", NotAfter: now.AddDate(1, 0, 0)},
		{AppID: "a-expired", NotAfter: now.Add(-time.Hour)},
		{AppID: "b-soon", NotAfter: now.AddDate(0, 0, 10)},
	}, now, 30*24*time.Hour)
	if got := levels(rs); got != "FAIL,WARN,PASS" {
		t.Fatalf("levels %s: %+v", got, rs)
	}
	if CheckExpiry(nil, now, time.Hour)[0].Level != Warn {
		t.Fatal("no certificates should warn")
	}
}

func TestHardeningAndRender(t *testing.T) {
	env := &Env{Hardening: func(context.Context) (harden.Report, error) {
		return harden.Report{Measures: []harden.Measure{{Name: "no_core_dumps", Applied: true}, {Name: "memory_locked", Detail: "EPERM"}}}, nil
	}}
	rs := Run(context.Background(), []Check{{"hardening", env.checkHardening}}, time.Second)
	if rs[0].Level != Warn || !strings.Contains(rs[0].Detail, "memory_locked: EPERM") {
		t.Fatalf("%+v", rs)
	}
	var b bytes.Buffer
	Render(&b, append(rs, Result{Name: "config", Level: Pass, Detail: "/etc/credagent/config.yaml"}))
	want := "WARN  hardening  not in force: memory_locked: EPERM\n" +
		"                 fix: run the agent as the service (the unit's LimitMEMLOCK/LimitCORE), as root\n" +
		"PASS  config     /etc/credagent/config.yaml\n"
	if b.String() != want {
		t.Fatalf("render:\n%s\nwant:\n%s", b.String(), want)
	}
	env.Hardening = func(context.Context) (harden.Report, error) { return harden.Report{}, errors.New("down") }
	if env.checkHardening(context.Background())[0].Level != Warn {
		t.Fatal("error should warn")
	}
}
