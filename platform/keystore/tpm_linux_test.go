//go:build linux

package keystore_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

func TestTPMContract(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts keystoretest.SwtpmOptions
	}{
		{"unix", keystoretest.SwtpmOptions{}},
		{"tcp", keystoretest.SwtpmOptions{TCP: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tpm := keystoretest.StartSwtpm(t, tt.opts)
			dir := filepath.Join(t.TempDir(), "keys")
			path := func(name string) string { return filepath.Join(dir, name+keystore.TPMFileExt) }
			keystoretest.Run(t, keystoretest.Config{
				New: func(t *testing.T) keystore.Store {
					s, err := keystore.Open(keystore.Options{Backend: "tpm", Dir: dir, TPMDevice: tpm.Device})
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Backend:        keystore.BackendTPM,
				HardwareBacked: true,
				Tamper:         fileTampers(path),
				Corrupt: func(t *testing.T, name string) {
					// Flip a byte near the end: inside the SRK-encrypted
					// private blob, whose integrity check the TPM enforces.
					b, err := os.ReadFile(path(name))
					must(t, err)
					b[len(b)-5] ^= 0x40
					must(t, os.WriteFile(path(name), b, 0o600))
				},
				Wipe: func(t *testing.T) { tpm.Restart(t, true) },
			})
		})
	}
}

// TestTPMRebootKeepsKeys: a TPM restart that keeps its state (a reboot)
// regenerates the same SRK, so keys still open.
func TestTPMRebootKeepsKeys(t *testing.T) {
	tpm := keystoretest.StartSwtpm(t, keystoretest.SwtpmOptions{})
	dir := filepath.Join(t.TempDir(), "keys")
	s, err := keystore.OpenTPMStore(tpm.Device, dir)
	must(t, err)
	k, err := s.Create("machine")
	must(t, err)
	s.Close()
	tpm.Restart(t, false)
	s, err = keystore.OpenTPMStore(tpm.Device, dir)
	must(t, err)
	defer s.Close()
	k2, err := s.Open("machine")
	must(t, err)
	if !k2.PublicKey().Equal(k.PublicKey()) {
		t.Fatal("different key after a TPM reboot")
	}
}

// TestTPMUnavailable: a TPM that cannot be reached is an ordinary error,
// not ErrNeedsReenroll (the key may be fine; the TPM may come back).
func TestTPMUnavailable(t *testing.T) {
	for _, dev := range []string{"/nonexistent/tpmrm0", "unix:///nonexistent.sock", "tcp://127.0.0.1:1"} {
		_, err := keystore.Open(keystore.Options{Backend: "tpm", Dir: filepath.Join(t.TempDir(), "keys"), TPMDevice: dev})
		if err == nil || errors.Is(err, keystore.ErrNeedsReenroll) {
			t.Errorf("%s: err = %v, want a plain error", dev, err)
		}
	}
}

// TestAutoBackend: auto follows the keys already in the directory, and
// otherwise uses the TPM if it answers.
func TestAutoBackend(t *testing.T) {
	tpm := keystoretest.StartSwtpm(t, keystoretest.SwtpmOptions{})
	tests := []struct {
		name   string
		seed   string // backend that made a key in the dir first, or ""
		device string
		want   string
	}{
		{"no TPM, empty dir", "", "/nonexistent/tpmrm0", keystore.BackendFile},
		{"TPM, empty dir", "", tpm.Device, keystore.BackendTPM},
		{"TPM, file key present", "file", tpm.Device, keystore.BackendFile},
		{"TPM key present", "tpm", tpm.Device, keystore.BackendTPM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if tt.seed != "" {
				s, err := keystore.Open(keystore.Options{Backend: tt.seed, Dir: dir, TPMDevice: tpm.Device})
				must(t, err)
				_, err = s.Create("machine")
				must(t, err)
				s.Close()
			}
			s, err := keystore.Open(keystore.Options{Backend: "auto", Dir: dir, TPMDevice: tt.device})
			must(t, err)
			defer s.Close()
			if got := s.Info().Backend; got != tt.want {
				t.Fatalf("auto chose %q, want %q", got, tt.want)
			}
		})
	}
	// A directory of TPM blobs with the TPM gone is an error, not a silent
	// switch to a new file key.
	dir := filepath.Join(t.TempDir(), "keys")
	s, err := keystore.Open(keystore.Options{Backend: "tpm", Dir: dir, TPMDevice: tpm.Device})
	must(t, err)
	_, err = s.Create("machine")
	must(t, err)
	s.Close()
	if s, err := keystore.Open(keystore.Options{Backend: "auto", Dir: dir, TPMDevice: "/nonexistent/tpmrm0"}); err == nil {
		s.Close()
		t.Fatal("auto fell back to the file backend over TPM blobs")
	}
}

// TestTPMReconnects: a store whose TPM connection breaks (the resource
// manager or simulator restarted) reconnects on the next use; if the TPM
// was cleared meanwhile, the error says the machine needs re-enrolment.
func TestTPMReconnects(t *testing.T) {
	tests := []struct {
		name         string
		wipe         bool
		wantReenroll bool
	}{
		{"restarted", false, false},
		{"cleared", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpm := keystoretest.StartSwtpm(t, keystoretest.SwtpmOptions{})
			s, err := keystore.OpenTPMStore(tpm.Device, filepath.Join(t.TempDir(), "keys"))
			must(t, err)
			defer s.Close()
			k, err := s.Create("machine")
			must(t, err)
			peer, err := ecdh.P256().GenerateKey(rand.Reader)
			must(t, err)
			want, err := peer.ECDH(k.PublicKey())
			must(t, err)

			tpm.Restart(t, tt.wipe)
			got, err := k.ECDH(peer.PublicKey())
			if tt.wantReenroll {
				if !errors.Is(err, keystore.ErrNeedsReenroll) {
					t.Fatalf("after the TPM was cleared: %v, want ErrNeedsReenroll", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("after the TPM restarted: %x, %v", got, err)
			}
		})
	}
}
