package inbox

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/state"
	"github.com/rs/zerolog"
)

const crashEnv = "CREDAGENT_INBOX_CRASH_CHILD"

// TestCrashChild is the agent side of TestCrashSafety: run in a child
// process, it loads the records and applies the inbox, until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestCrashSafety")
	}
	in, err := New(crashOptions(dir, &state.State{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	in.ScanOnce(context.Background())
}

func crashOptions(dir string, st *state.State) Options {
	return Options{
		InboxDir: filepath.Join(dir, "inbox"), StateDir: filepath.Join(dir, "state"),
		Signers: []crypto.PublicKey{signer.Public()}, MachineKeys: []Key{memKey{machineKey}}, MachineID: machineID,
		State: st, Log: zerolog.Nop(),
	}
}

// TestCrashSafety kills the applying agent at random moments and checks,
// after each kill, that a restart yields a consistent state: every object is
// exactly one of the deliveries made for it (certificate and key together),
// sequence numbers never go back, and nothing is rejected by mistake.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip()
	}
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "inbox"), 0o700)
	me := delivery.Machine(machineID)
	next := 1
	// feed keeps a dozen deliveries waiting in the inbox, so that every run
	// of the child is applying when it is killed.
	feed := func() {
		pending, _ := filepath.Glob(filepath.Join(dir, "inbox", "*.delivery"))
		for k := len(pending); k < 12; k++ {
			i := next
			next++
			var c delivery.Content
			target := "app"
			var to = machineKey.PublicKey()
			switch i % 3 {
			case 0:
				c = validApp(t, int64(1000+i))
			case 1:
				target, to = "prod", nil
				c = &delivery.Store{Servers: []string{fmt.Sprintf("https://ccp%d.example.com", i)}, AppID: "app"}
			case 2:
				target, to = "bot", nil
				c = &delivery.Credential{Store: "prod", Object: fmt.Sprintf("obj-%d", i)}
			}
			b := build(t, hdr(target, uint64(i), me), c, to, signer)
			if err := os.WriteFile(filepath.Join(dir, "inbox", fmt.Sprintf("%06d.delivery", i)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := map[string]uint64{}
	deadline := time.Now().Add(4 * time.Second)
	kills := 0
	for round := 0; ; round++ {
		finish := time.Now().After(deadline)
		if !finish {
			feed()
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !finish {
			d, _ := rand.Int(rand.Reader, big.NewInt(120))
			time.Sleep(time.Duration(d.Int64()+10) * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
		}
		err := cmd.Wait()
		if err != nil && finish {
			t.Fatalf("final run failed: %v", err)
		}
		if err != nil {
			kills++
		}
		// Restart and check.
		st := &state.State{}
		in, err := New(crashOptions(dir, st))
		if err != nil {
			t.Fatal(err)
		}
		err = in.Load(context.Background())
		// The inbox holds its directory open (on Windows without delete
		// sharing): let it go before the next round and the clean-up.
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		s := st.Load()
		if len(s.Rejected) != 0 {
			t.Fatalf("round %d: records no longer load: %+v", round, s.Rejected)
		}
		rej, _ := os.ReadDir(filepath.Join(dir, "state", "rejected"))
		if len(rej) != 0 {
			t.Fatalf("round %d: deliveries rejected: %v", round, rej)
		}
		seqs := map[string]uint64{}
		if a := s.Applications["app"]; a != nil {
			if a.Seq%3 != 0 || a.Certificate.Leaf.SerialNumber.Int64() != int64(1000+a.Seq) {
				t.Fatalf("round %d: mixed application: seq %d serial %v", round, a.Seq, a.Certificate.Leaf.SerialNumber)
			}
			if err := delivery.KeyMatches(a.Certificate.Leaf, a.Certificate.PrivateKey.(crypto.Signer)); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			seqs["app"] = a.Seq
		}
		if st := s.Stores["prod"]; st != nil {
			if st.Servers[0] != fmt.Sprintf("https://ccp%d.example.com", st.Seq) {
				t.Fatalf("round %d: mixed store %d %v", round, st.Seq, st.Servers)
			}
			seqs["prod"] = st.Seq
		}
		if c := s.Credentials["bot"]; c != nil {
			if c.Object != fmt.Sprintf("obj-%d", c.Seq) {
				t.Fatalf("round %d: mixed credential %d %s", round, c.Seq, c.Object)
			}
			seqs["bot"] = c.Seq
		}
		for k, v := range last {
			if seqs[k] < v {
				t.Fatalf("round %d: %s went back from %d to %d", round, k, v, seqs[k])
			}
		}
		if testing.Verbose() {
			t.Logf("round %d: %v", round, seqs)
		}
		last = seqs
		if finish {
			break
		}
	}
	n := uint64(next - 1)
	want := map[string]uint64{"app": n - n%3, "prod": n - (n+2)%3, "bot": n - (n+1)%3}
	for k, v := range want {
		if last[k] != v {
			t.Fatalf("final state %v, want %v", last, want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "inbox", "*"))
	if len(left) != 0 {
		t.Fatalf("inbox not drained: %v", left)
	}
	t.Logf("%d deliveries, %d kills; final state %v", n, kills, last)
}
