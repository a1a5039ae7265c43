package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/fsutil/fsutiltest"
	"github.com/credagent/credagent/platform/keystore"
)

func TestEnrollDev(t *testing.T) {
	dev := t.TempDir()
	regPath := filepath.Join(dev, "state", "registration.json")
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	readReg := func(t *testing.T) enroll.Registration {
		t.Helper()
		f, err := os.Open(regPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, _, err := enroll.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	run := func(t *testing.T, o enrollOptions) string {
		t.Helper()
		var out bytes.Buffer
		if err := runEnroll(o, &out, io.Discard, now); err != nil {
			t.Fatalf("enroll: %v", err)
		}
		return out.String()
	}

	steps := []struct {
		name       string
		opts       enrollOptions
		wantOut    string
		sameKeyAs  string // step whose key this one must keep; "" = a new key
		wantNextOn bool   // machine.next exists afterwards
	}{
		{"first run creates", enrollOptions{dev: dev}, "created", "", false},
		{"second run keeps", enrollOptions{dev: dev}, "kept the existing key", "first run creates", false},
		{"rotate", enrollOptions{dev: dev, rotate: true}, "new key machine.next created", "", true},
		{"rotate again keeps pending", enrollOptions{dev: dev, rotate: true}, "already in progress", "rotate", true},
		{"plain run during rotation", enrollOptions{dev: dev}, "registering the pending key", "rotate", true},
	}
	fps := map[string]string{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out := run(t, st.opts)
			if !strings.Contains(out, st.wantOut) {
				t.Fatalf("output %q does not say %q", out, st.wantOut)
			}
			reg := readReg(t)
			if !strings.Contains(out, reg.Fingerprint) {
				t.Fatalf("the printed fingerprint is not the registered one:\n%s", out)
			}
			if reg.KeyBackend != "file" || reg.Created != now {
				t.Fatalf("registration %+v", reg)
			}
			if st.sameKeyAs != "" && fps[st.sameKeyAs] != reg.Fingerprint {
				t.Fatalf("key changed; want the key of step %q", st.sameKeyAs)
			}
			for prev, fp := range fps {
				if st.sameKeyAs == "" && fp == reg.Fingerprint {
					t.Fatalf("new key equals the key of step %q", prev)
				}
			}
			fps[st.name] = reg.Fingerprint
			_, err := os.Stat(filepath.Join(dev, "keys", "machine.next"+keystore.FileExt))
			if (err == nil) != st.wantNextOn {
				t.Fatalf("machine.next present = %v, want %v", err == nil, st.wantNextOn)
			}
		})
	}

	// The agent's switch: Promote makes the pending key current.
	s, err := keystore.Open(keystore.Options{Backend: "file", Dir: filepath.Join(dev, "keys")})
	if err != nil {
		t.Fatal(err)
	}
	if err := keystore.Promote(s, "machine"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out := run(t, enrollOptions{dev: dev})
	if !strings.Contains(out, "kept the existing key") || readReg(t).Fingerprint != fps["rotate"] {
		t.Fatalf("after Promote, enroll should keep the rotated key:\n%s", out)
	}
}

func TestEnrollOutStdout(t *testing.T) {
	var out bytes.Buffer
	if err := runEnroll(enrollOptions{dev: t.TempDir(), out: "-"}, &out, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := enroll.Parse(&out); err != nil {
		t.Fatalf("stdout is not just the registration: %v", err)
	}
}

func TestEnrollInsecureKeyRefused(t *testing.T) {
	dev := t.TempDir()
	var out bytes.Buffer
	if err := runEnroll(enrollOptions{dev: dev}, &out, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	fsutiltest.LetOthersRead(t, filepath.Join(dev, "keys", "machine"+keystore.FileExt))
	err := runEnroll(enrollOptions{dev: dev}, &out, io.Discard, time.Now())
	fix := "chmod 600"
	if runtime.GOOS == "windows" {
		fix = "icacls"
	}
	if !errors.Is(err, fsutil.ErrInsecure) || !strings.Contains(err.Error(), fix) {
		t.Fatalf("err = %v, want a refusal that says how to fix it (%s)", err, fix)
	}
}

// TestEnrollLostKeyNeedsRotate: with the machine key gone but its
// registration still there, plain enroll refuses to make a new key; enroll
// --rotate makes one and says the portal must re-seal.
func TestEnrollLostKeyNeedsRotate(t *testing.T) {
	dev := t.TempDir()
	var out bytes.Buffer
	if err := runEnroll(enrollOptions{dev: dev}, &out, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dev, "keys", "machine"+keystore.FileExt)
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	err := runEnroll(enrollOptions{dev: dev}, &out, io.Discard, time.Now())
	if err == nil || !strings.Contains(err.Error(), "enroll --rotate") {
		t.Fatalf("err = %v, want a refusal that says to run enroll --rotate", err)
	}
	if _, err := os.Stat(key); err == nil {
		t.Fatal("a key was created without --rotate")
	}
	out.Reset()
	if err := runEnroll(enrollOptions{dev: dev, rotate: true}, &out, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "re-seal") {
		t.Fatalf("enroll --rotate output does not say the portal must re-seal: %s", out.String())
	}
}
