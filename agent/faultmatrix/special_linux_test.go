//go:build linux

package faultmatrix

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"github.com/rs/zerolog"
)

// Child process modes, selected by environment variables.
const (
	childResolveEnv = "FAULTMATRIX_CHILD_RESOLVE" // resolve "sap" on this socket, exit 0 if served
	childAgentEnv   = "FAULTMATRIX_CHILD_AGENT"   // run the agent in dev mode on this directory until killed
	childFloodEnv   = "FAULTMATRIX_CHILD_FLOOD"   // MODE:N:SOCKET, flood until stdin closes (see flood)
)

// child runs the process as a child mode if one is asked for, and then
// exits; it returns false otherwise.
func child() bool {
	if sock := os.Getenv(childResolveEnv); sock != "" {
		c := client.New(sock)
		o := resolveWith(c, "sap")
		if o.class != "" {
			fmt.Printf("not served: %v\n", o)
			os.Exit(1)
		}
		fmt.Println("served")
		os.Exit(0)
	}
	if spec := os.Getenv(childFloodEnv); spec != "" {
		os.Exit(flood(spec))
	}
	if dir := os.Getenv(childAgentEnv); dir != "" {
		cfg, err := daemon.DevConfig(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		cfg.Inbox.RescanInterval = 100 * time.Millisecond
		err = daemon.Run(context.Background(), daemon.Options{Config: cfg, Dev: true, DevDir: dir, Log: zerolog.Nop(), Audit: zerolog.Nop(), SkipHardening: true})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	return false
}

func testDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		skipRow(t, "disk-full", "needs root to mount a tmpfs")
	}
	var stateDir string
	w := newWorld(t, worldOptions{beforeStart: func(w *world) {
		stateDir = w.cfg.Paths.StateDir
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", stateDir).CombinedOutput(); err != nil {
			skipRow(t, "disk-full", fmt.Sprintf("cannot mount a tmpfs: %v: %s", err, strings.TrimSpace(string(out))))
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", "-l", stateDir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", stateDir, err, out)
			}
		})
	}})
	w.provision()
	w.expectServed("sap", "Sap-Pr0d!pass")

	// Fill the file system.
	filler := filepath.Join(stateDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	f.Close()

	// A new store that points nowhere: if it were applied, resolutions
	// would fail, so being served proves the old one is in force.
	d := w.build("prod", storeFor("https://"+deadAddr(t)), 0)
	w.drop(d.ID+".delivery", d.Marshal())
	e, handled := w.event(d.ID, 3*time.Second)
	if handled && e.Err == nil {
		t.Fatalf("the delivery was applied on a full disk")
	}
	t.Logf("on a full disk: handled=%v reason=%q err=%v", handled, e.Reason, e.Err)
	if !fileExists(filepath.Join(w.cfg.Paths.InboxDir, d.ID+".delivery")) {
		t.Fatal("the delivery left the inbox without being applied: it is lost")
	}
	w.expectServed("sap", "Sap-Pr0d!pass")
	if st := w.status(); len(st.Stores) != 1 || st.Stores[0].Servers[0] != w.ccp.URL {
		t.Fatalf("the store changed: %+v", st.Stores)
	}

	// Free the space: the delivery must be taken in on a later scan.
	os.Remove(filler)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := w.status()
		if len(st.Stores) == 1 && st.Stores[0].Servers[0] != w.ccp.URL {
			break
		}
		if time.Now().After(deadline) {
			_, inInbox := os.Stat(filepath.Join(w.cfg.Paths.InboxDir, d.ID+".delivery"))
			t.Fatalf("after freeing space the delivery was not applied within 5 s (still in the inbox: %v; rejections %+v)", inInbox == nil, st.Rejected)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keyFile returns the machine key's file in the file key store.
func keyFile(t *testing.T, w *world) string {
	t.Helper()
	var files []string
	filepath.WalkDir(w.cfg.KeyStore.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("key store dir holds %v, want one key file", files)
	}
	return files[0]
}

func testKeyStoreCorrupt(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.provision()
	w.expectServed("sap", "Sap-Pr0d!pass")
	w.stop()
	kf := keyFile(t, w)
	if err := os.WriteFile(kf, []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	records, _ := filepath.Glob(filepath.Join(w.cfg.Paths.StateDir, "records", "*", "*"))
	if err := w.start(true); err != nil {
		t.Fatalf("the agent did not start with an unusable key: %v", err)
	}
	st := w.status()
	if st.KeyStore.NeedsReenroll == "" || st.Ready || !contains(strings.Join(st.Problems, ";"), "re-enrol") {
		t.Fatalf("status: needs_reenroll %q ready %v problems %q", st.KeyStore.NeedsReenroll, st.Ready, st.Problems)
	}
	if o := w.resolve("sap"); o.class != "needs_reenroll" {
		t.Fatalf("resolve with an unusable key: %v, want class needs_reenroll", o)
	}
	after, _ := filepath.Glob(filepath.Join(w.cfg.Paths.StateDir, "records", "*", "*"))
	if len(records) == 0 || len(after) != len(records) {
		t.Fatalf("sealed records %d before, %d after: they must be kept", len(records), len(after))
	}
}

func testKeyStoreInsecure(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.provision()
	w.stop()
	kf := keyFile(t, w)
	if err := os.Chmod(kf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.start(true); err != nil {
		t.Fatalf("the agent crash-looped on an insecure key instead of degrading: %v", err)
	}
	st := w.status()
	if st.Ready || !strings.Contains(st.KeyStore.NeedsReenroll, filepath.Base(kf)) || !strings.Contains(st.KeyStore.NeedsReenroll, "chmod") {
		t.Fatalf("status does not name the key file and the fix: needs_reenroll %q ready %v", st.KeyStore.NeedsReenroll, st.Ready)
	}
	if o := w.resolve("sap"); o.class != "needs_reenroll" {
		t.Fatalf("resolve with an insecure key: %v, want class needs_reenroll", o)
	}
}

func floodWorld(t *testing.T, configure func(c *config.Config)) *world {
	sock := filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock")
	return newWorld(t, worldOptions{notDev: true, configure: func(c *config.Config) {
		c.Paths.Socket = sock
		c.API.SocketGroup = "nogroup"
		c.Policy.Rules = append(c.Policy.Rules, config.Rule{Name: "nobody", UIDs: []uint32{localsocktest.Nobody}, Credentials: []string{"sap"}})
		configure(c)
	}})
}

func testFloodRate(t *testing.T) {
	if os.Geteuid() != 0 {
		skipRow(t, "flood-rate", "needs root to run the second caller as nobody")
	}
	w := floodWorld(t, func(c *config.Config) { c.API.RatePerSecond, c.API.RateBurst = 5, 5 })
	w.provision()
	limited, served := 0, 0
	for range 30 {
		o := w.resolve("sap")
		switch {
		case o.class == "":
			served++
		case apitype.IsRateLimited(o.reqErr):
			var ce *client.Error
			errors.As(o.reqErr, &ce)
			if ce.HTTPStatus != 429 || ce.RetryAfter <= 0 {
				t.Fatalf("rate limited with status %d, Retry-After %v", ce.HTTPStatus, ce.RetryAfter)
			}
			limited++
		default:
			t.Fatalf("flooder: %v", o)
		}
	}
	if limited == 0 || served == 0 {
		t.Fatalf("flooder: %d served, %d limited; want both", served, limited)
	}
	out, err := localsocktest.RunAs(t, localsocktest.Nobody, localsocktest.Nobody, []string{childResolveEnv + "=" + w.cfg.Paths.Socket}, "-test.run=^$")
	if err != nil || !strings.Contains(string(out), "served") {
		t.Fatalf("the other caller was not served while the flooder is limited: %v: %s", err, out)
	}
}

func testFloodConcurrency(t *testing.T) {
	w := newWorld(t, worldOptions{configure: func(c *config.Config) {
		c.API.MaxConcurrent = 2
		c.CCP.RequestTimeout = 5 * time.Second
	}})
	w.provision()
	w.ccp.SetFaults(fakeccp.Faults{Latency: 1500 * time.Millisecond})
	// A slot-holder waits 1.5 s; one refused for want of a slot answers
	// within 1 s, however loaded the machine.
	const n = 10
	var wg sync.WaitGroup
	outs := make([]outcome, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(w.cfg.Paths.Socket)
			defer c.Close()
			outs[i] = resolveWith(c, "sap")
		}()
	}
	wg.Wait()
	capped, served := 0, 0
	for _, o := range outs {
		var ce *client.Error
		switch {
		case o.class == "":
			served++
		case errors.As(o.reqErr, &ce) && ce.HTTPStatus == 503:
			if ce.RetryAfter <= 0 || o.took > time.Second {
				t.Fatalf("capped request: Retry-After %v after %v; want a prompt 503 with Retry-After", ce.RetryAfter, o.took)
			}
			capped++
		default:
			t.Fatalf("flood: %v", o)
		}
	}
	if capped == 0 || served < 2 {
		t.Fatalf("%d served, %d capped; want at least 2 served and some capped", served, capped)
	}
	w.ccp.SetFaults(fakeccp.Faults{})
	w.expectServed("sap", "Sap-Pr0d!pass")
}

func testSigkillApply(t *testing.T) {
	b, err := sharedPKI.MintClientCert(fakeccp.ClientCertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serialA, serialB := sharedPKI.AppSerial, b.Leaf.SerialNumber.Text(16)
	w := newWorld(t, worldOptions{noStart: true, extraSerials: []string{serialB}})
	var cmd *exec.Cmd
	startChild := func() {
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childAgentEnv+"="+w.dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	t.Cleanup(func() { kill() })
	c := client.New(w.cfg.Paths.Socket)
	defer c.Close()
	waitReady := func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := c.Status(ctx)
			cancel()
			if err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the child agent did not come up within 10 s")
	}
	startChild()
	waitReady()
	if err := w.loadPortal(); err != nil {
		t.Fatal(err)
	}
	put := func(target string, content delivery.Content) {
		d := w.build(target, content, 0)
		w.drop(d.ID+".delivery", d.Marshal())
	}
	appA, appB := appContent(t, sharedPKI.App), appContent(t, b)
	put("DemoApp", appA)
	put("prod", storeFor(w.ccp.URL))
	put("sap", &delivery.Credential{Store: "prod", Object: "sap-prod-admin"})

	kills := 0
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		for j := range 6 {
			switch (i + j) % 3 {
			case 0:
				if j%2 == 0 {
					put("DemoApp", appA)
				} else {
					put("DemoApp", appB)
				}
			case 1:
				s := storeFor(w.ccp.URL)
				s.DisplayName = fmt.Sprintf("round %d", i)
				put("prod", s)
			case 2:
				put("sap", &delivery.Credential{Store: "prod", Object: "sap-prod-admin", UsernameVar: fmt.Sprintf("u%d", i)})
			}
		}
		d, _ := rand.Int(rand.Reader, big.NewInt(80))
		time.Sleep(time.Duration(d.Int64()+5) * time.Millisecond)
		kill()
		kills++
		startChild()
		waitReady()
	}
	// Let the last agent take in whatever is left.
	deadline = time.Now().Add(5 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(w.cfg.Paths.InboxDir, "*.delivery"))
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still in the inbox", len(left))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Rejections are listed across restarts, and a scan applies a backlog
	// in sequence order: nothing may be refused, not even as a replay.
	if !st.Ready || len(st.Rejected) != 0 {
		t.Fatalf("after %d kills: ready %v, rejected %+v", kills, st.Ready, st.Rejected)
	}
	if len(st.Applications) != 1 || (st.Applications[0].Serial != serialA && st.Applications[0].Serial != serialB) {
		t.Fatalf("after %d kills: application %+v is none of those delivered", kills, st.Applications)
	}
	if o := resolveWith(c, "sap"); o.class != "" || o.password != "Sap-Pr0d!pass" {
		t.Fatalf("after %d kills: %v", kills, o)
	}
	t.Logf("%d kills during apply", kills)
}

// flood is the flooding socket-group member, run as its own account.
// spec is MODE:N:SOCKET:
//
//   - slow: N goroutines each send a resolve request whose body never
//     comes (Content-Length: 100, one byte sent), wait for the answer or 5 s,
//     and start again, until stdin closes;
//   - hold: open N connections and keep them until stdin closes.
//
// It prints "ready" once the flood is under way, and a summary at the end.
func flood(spec string) int {
	mode, rest, _ := strings.Cut(spec, ":")
	ns, sock, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(ns)
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	var attempts, answered, failed atomic.Int64
	switch mode {
	case "slow":
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					attempts.Add(1)
					c, err := net.Dial("unix", sock)
					if err != nil {
						failed.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					io.WriteString(c, "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if k, _ := c.Read(make([]byte, 64)); k > 0 {
						answered.Add(1)
					}
					c.Close()
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		fmt.Println("ready")
		wg.Wait()
	case "hold":
		var conns []net.Conn
		for range n {
			attempts.Add(1)
			c, err := net.Dial("unix", sock)
			if err != nil {
				failed.Add(1)
				continue
			}
			conns = append(conns, c)
		}
		fmt.Println("ready")
		<-stop
		for _, c := range conns {
			c.Close()
		}
	default:
		fmt.Println("unknown flood mode", mode)
		return 2
	}
	fmt.Printf("attempts=%d answered=%d failed=%d\n", attempts.Load(), answered.Load(), failed.Load())
	return 0
}

// startFlood runs flood as u and waits until it is under way. The returned
// function stops it and returns its summary.
func startFlood(t *testing.T, u localsocktest.User, spec string) func() string {
	t.Helper()
	cmd := localsocktest.CommandAs(t, u, []string{childFloodEnv + "=" + spec}, "-test.run=^$")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out agenttest.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	stopFn := func() string {
		if !done {
			done = true
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				out.Write([]byte("\n(flooder: " + err.Error() + ")"))
			}
		}
		return strings.TrimSpace(out.String())
	}
	t.Cleanup(func() { stopFn() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not start within 30 s: %s", stopFn())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return stopFn
}

// memberWorld is an agent whose socket group is a group made for the test,
// with a runner account that a rule allows "sap", and a flooder account in
// the same group that no rule names.
func memberWorld(t *testing.T, row string, configure func(c *config.Config)) (w *world, runner, flooder localsocktest.User) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipRow(t, row, "needs root to create the runner's and the flooder's accounts")
	}
	group, _ := localsocktest.NewGroup(t)
	runner = localsocktest.NewUser(t, group)
	flooder = localsocktest.NewUser(t, group)
	sock := filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock")
	w = newWorld(t, worldOptions{notDev: true, configure: func(c *config.Config) {
		c.Paths.Socket = sock
		c.API.SocketGroup = group
		c.Policy.Rules = append(c.Policy.Rules, config.Rule{Name: "runner", UIDs: []uint32{runner.UID}, Credentials: []string{"sap"}})
		configure(c)
	}})
	w.provision()
	return w, runner, flooder
}

// expectRunnerServed resolves "sap" as the runner's account, n times.
func expectRunnerServed(t *testing.T, w *world, runner localsocktest.User, n int) {
	t.Helper()
	for i := range n {
		out, err := localsocktest.CommandAs(t, runner, []string{childResolveEnv + "=" + w.cfg.Paths.Socket}, "-test.run=^$").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "served") {
			t.Fatalf("the allowed runner, attempt %d, during the flood: %v: %s", i+1, err, out)
		}
	}
}

func testFloodNoRule(t *testing.T) {
	w, runner, flooder := memberWorld(t, "flood-no-rule", func(c *config.Config) { c.API.MaxConcurrent = 4 })
	start := time.Now()
	stopFlood := startFlood(t, flooder, "slow:64:"+w.cfg.Paths.Socket)
	t.Logf("flood under way after %v", time.Since(start))
	expectRunnerServed(t, w, runner, 2)
	t.Logf("runner served twice after %v", time.Since(start))
	w.expectServed("sap", "Sap-Pr0d!pass") // root, too
	t.Logf("flooder: %s", stopFlood())
}

func testFloodConnections(t *testing.T) {
	w, runner, flooder := memberWorld(t, "flood-connections", func(*config.Config) {})
	before := openFDs(t)
	start := time.Now()
	stopFlood := startFlood(t, flooder, "hold:5000:"+w.cfg.Paths.Socket)
	t.Logf("5000 connections attempted in %v", time.Since(start))
	// Let the agent accept (and refuse) the backlog.
	time.Sleep(500 * time.Millisecond)
	during := openFDs(t)
	expectRunnerServed(t, w, runner, 1)
	t.Logf("runner served after %v", time.Since(start))
	w.expectServed("sap", "Sap-Pr0d!pass")
	if limit := before + w.cfg.API.MaxConnectionsPerCaller + 16; during > limit {
		t.Fatalf("the agent holds %d descriptors while one caller opens 5000 connections (%d before; cap per caller %d)", during, before, w.cfg.API.MaxConnectionsPerCaller)
	}
	t.Logf("agent descriptors: %d before, %d while 5000 connections were attempted; flooder: %s", before, during, stopFlood())
}

// openFDs counts this process's (the agent's) open descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
