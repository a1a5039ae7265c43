package main

import (
	"flag"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

// keystoreUnwrap runs keystoretest.BenchmarkUnwrap (one HPKE open of a small
// message sealed to the key) for each backend, interleaved, with the memory
// store as the baseline.
func (h *harness) keystoreUnwrap() error {
	testing.Init()
	if err := flag.Set("test.benchtime", "300ms"); err != nil {
		return err
	}
	type backend struct {
		name string
		key  keystore.Key
		st   keystore.Store
	}
	var bs []backend
	mem := keystore.NewMemoryStore()
	k, err := mem.Create("bench")
	if err != nil {
		return err
	}
	bs = append(bs, backend{"memory", k, mem})
	fs, err := keystore.OpenFileStore(filepath.Join(h.root, "ks-file"))
	if err != nil {
		return err
	}
	if k, err = fs.Create("bench"); err != nil {
		return err
	}
	bs = append(bs, backend{"file", k, fs})
	var tpmErr error
	if dev, err := h.startSwtpm(); err != nil {
		tpmErr = err
	} else if ts, err := keystore.OpenTPMStore(dev, filepath.Join(h.root, "ks-tpm")); err != nil {
		tpmErr = err
	} else if k, err := ts.Create("bench"); err != nil {
		ts.Close()
		tpmErr = err
	} else {
		bs = append(bs, backend{"tpm", k, ts})
	}
	defer func() {
		for _, b := range bs {
			b.st.Close()
		}
	}()

	res := map[string][]float64{}
	rounds := max(3, h.rounds-2)
	for r := range rounds {
		for i := range bs {
			b := bs[(i+r)%len(bs)]
			if h.ctx.Err() != nil {
				return errBudget
			}
			br := testing.Benchmark(func(tb *testing.B) { keystoretest.BenchmarkUnwrap(tb, b.key) })
			if br.N == 0 {
				return fmt.Errorf("the %s unwrap benchmark failed", b.name)
			}
			res[b.name] = append(res[b.name], float64(br.NsPerOp())/1e3)
		}
	}
	memMed := rig.Median(res["memory"])
	for _, name := range []string{"memory", "file", "tpm"} {
		f := &figure{Key: "keystore_unwrap_us." + name, Unit: "µs", BaselineName: "memory store", Baseline: memMed, BaselineRounds: res["memory"],
			Method: fmt.Sprintf("keystoretest.BenchmarkUnwrap (HPKE open of a 4 KiB message sealed to the key: one ECDH in the store, "+
				"then HKDF and AES-GCM) through testing.Benchmark, 300 ms per run, %d rounds interleaving the backends; median µs per unwrap.", rounds)}
		switch name {
		case "file":
			f.Method = "file store (0600 key file, the dev and no-TPM backend): " + f.Method
		case "tpm":
			f.Method = "TPM store against Debian's swtpm on a Unix socket (a hardware TPM is slower still: swtpm does the TPM's work on this CPU): " + f.Method
		}
		if vals, ok := res[name]; ok {
			f.Value, f.Rounds = rig.Median(vals), vals
		} else {
			f.Error = fmt.Sprintf("not measured: %v", tpmErr)
		}
		h.rep.add(f)
	}
	return nil
}

// startSwtpm starts a swtpm on a Unix socket in the run's directory and
// returns its device string.
func (h *harness) startSwtpm() (string, error) {
	if _, err := exec.LookPath("swtpm"); err != nil {
		return "", fmt.Errorf("swtpm is not installed (scripts/prereqs.sh installs it)")
	}
	dir := filepath.Join(h.root, "swtpm")
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return "", err
	}
	sock := filepath.Join(dir, "tpm.sock")
	_, err := rig.StartProc("swtpm", filepath.Join(h.root, "swtpm.log"), "swtpm", "socket", "--tpm2",
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"),
		"--tpmstate", "dir="+filepath.Join(dir, "state"), "--flags", "not-need-init,startup-clear")
	if err != nil {
		return "", err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return "unix://" + sock, nil
		}
	}
	return "", fmt.Errorf("swtpm did not listen on %s within 10s", sock)
}
