package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/procs"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/logfile"
	"github.com/credagent/credagent/scripts/internal/rig"
	"github.com/rs/zerolog"
)

// The breakdown of a resolution through the agent, measured in the same
// run as the totals (see latency): each piece is measured on its own, with
// the agent's own packages, between the latency rounds.
//
//   - the local API alone: child-localapi, a process of its own (with the
//     agent's scheduler setting) serving agent/localapi with the agent's
//     resolver, an instant Fetcher and no audit, reached through
//     agent/localapi/client like the agent;
//   - the CCP client alone: the direct path (agent/ccp in this process);
//   - policy, rate limit and lookup, and the audit write: agent/resolve in
//     this process with an instant Fetcher, its audit stream off and then
//     into a file opened as the agent opens its log files;
//   - the caller's identity: localsock.PeerOf on a fresh connection (once
//     per connection; the clients keep their connections);
//   - the rest (the agent's total minus the pieces) is the hand-offs
//     between processes and threads, which the agent's CPU time and
//     context switches per resolution (from /proc) show.
const childLocalAPI = "child-localapi" // DIR: the local API with an instant Fetcher on DIR/api.sock

// instantFetcher answers every Get at once with a fixed test account.
type instantFetcher struct{}

func (instantFetcher) Get(_ context.Context, req ccp.Request) (*ccp.Account, error) {
	return &ccp.Account{Content: secret.FromString("bench-not-a-password"), Properties: map[string]string{"UserName": "svc_sap"},
		Server: "https://instant.invalid", CorrelationID: "0000000000000000"}, nil
}

// benchState holds the benchmark's credential, store and application.
func benchState() *state.State {
	s := state.Empty()
	s.Applications[state.Key("", benchAppID)] = &state.Application{AppID: benchAppID, Certificate: &tls.Certificate{}, Fingerprint: "bench"}
	s.Stores[state.Key("", benchStore)] = &state.Store{Name: benchStore, AppID: benchAppID, Safe: benchSafe, Folder: benchFolder, Seq: 1}
	s.Credentials[state.Key("", benchCred)] = &state.Credential{Name: benchCred, Store: benchStore, Object: benchObject, Seq: 1}
	var st state.State
	st.Publish(s)
	return &st
}

// benchResolver is agent/resolve as the dev agent runs it (a rule for this
// user, no rate limit), with the instant Fetcher and the given audit.
func benchResolver(audit zerolog.Logger) (*resolve.Resolver, error) {
	return resolve.New(resolve.Options{
		State:      benchState(),
		NewFetcher: func(*state.Store, *state.Application) (resolve.Fetcher, error) { return instantFetcher{}, nil },
		Policy:     resolve.Policy{Rules: []resolve.Rule{{Name: "bench", UIDs: []uint32{uint32(os.Getuid())}, Credentials: []string{"*"}}}},
		Audit:      audit,
		Log:        zerolog.Nop(),
	})
}

func serveLocalAPI(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: %s DIR", childLocalAPI)
	}
	// The agent's runtime settings (procs.SmallDaemon): this process
	// stands for the agent's local API. Its load is one sequential caller,
	// which never moves GOMAXPROCS off one: no Govern.
	procs.SmallDaemon()
	r, err := benchResolver(zerolog.Nop())
	if err != nil {
		return err
	}
	path := filepath.Join(args[0], "api.sock")
	ln, err := localsock.Listen(path, localsock.ListenOptions{Dev: true})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	srv := localapi.NewServer(localapi.Options{Resolver: r, Log: zerolog.Nop()})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	fmt.Printf("listening on %s\n", path)
	return <-errc
}

// startLocalAPI starts child-localapi and a client for it.
func (h *harness) startLocalAPI() error {
	dir := filepath.Join(h.root, "localapi")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p, err := rig.StartProc("local API", filepath.Join(h.root, "localapi.log"), h.self, childLocalAPI, dir)
	if err != nil {
		return err
	}
	sock, _, err := p.WaitLine("listening on ", 20*time.Second)
	if err != nil {
		return err
	}
	h.localAPI, h.localAPIClient = p, client.New(strings.TrimSpace(sock))
	return nil
}

func (h *harness) resolveLocalAPI(ctx context.Context) error {
	res, err := h.localAPIClient.Resolve(ctx, h.runID(), "bench-flow", benchCred)
	if err != nil {
		return err
	}
	defer res.Wipe()
	return res.Err()
}

// inProcess is agent/resolve in this process: without an audit stream,
// and with one into a file.
type inProcess struct {
	nop, audited *resolve.Resolver
	auditFile    *logfile.File
	self         *localsock.Identity
}

func (h *harness) newInProcess() (*inProcess, error) {
	p := &inProcess{}
	var err error
	if p.nop, err = benchResolver(zerolog.Nop()); err != nil {
		return nil, err
	}
	// As logging.New opens the audit file (audit_file), in the same
	// temporary directory as the agent's logs.
	if p.auditFile, err = logfile.Open(filepath.Join(h.root, "inprocess-audit.log"), logfile.Options{MaxBytes: 10 << 20, MaxFiles: 2}); err != nil {
		return nil, err
	}
	if p.audited, err = benchResolver(zerolog.New(p.auditFile).With().Str("stream", "audit").Logger()); err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	exe, _ := os.Executable()
	p.self = &localsock.Identity{Verified: true, UID: uint32(uid), GID: uint32(gid), Username: u.Username, PID: os.Getpid(), Exe: exe, PIDGuard: "pidfd"}
	return p, nil
}

// resolveOnce times one Resolve of the benchmark credential.
func (p *inProcess) resolveOnce(r *resolve.Resolver, runID string) (time.Duration, error) {
	t := time.Now()
	res := r.Resolve(context.Background(), p.self, resolve.Request{RunID: runID, FlowID: "bench-flow", Names: []string{benchCred}, Op: resolve.OpResolve})
	d := time.Since(t)
	res.Wipe()
	if res.Err != nil {
		return d, res.Err
	}
	if e := res.Items[0].Err; e != nil {
		return d, e
	}
	return d, nil
}

// pieces is one round of the in-process pieces: n resolutions without and
// with the audit file, interleaved in blocks of 50, and n identities.
type pieceRound struct {
	resolve, audited, identity, username []time.Duration
}

func (h *harness) inProcessRound(p *inProcess, n int) (pieceRound, error) {
	var pr pieceRound
	for done := 0; done < n; done += 50 {
		for range 50 {
			d, err := p.resolveOnce(p.nop, h.runID())
			if err != nil {
				return pr, err
			}
			pr.resolve = append(pr.resolve, d)
		}
		for range 50 {
			d, err := p.resolveOnce(p.audited, h.runID())
			if err != nil {
				return pr, err
			}
			pr.audited = append(pr.audited, d)
		}
	}
	var err error
	if pr.identity, err = identityTimes(n / 10); err != nil {
		return pr, err
	}
	// os/user answers the current user from a cache of its own: look up
	// another account, as the agent does for its callers.
	uid := otherUID()
	for range n / 10 {
		t := time.Now()
		if _, err := user.LookupId(uid); err != nil {
			return pr, err
		}
		pr.username = append(pr.username, time.Since(t))
	}
	return pr, nil
}

// otherUID is the first account in /etc/passwd that is not this process's
// user, or this user's when there is none.
func otherUID() string {
	self := strconv.Itoa(os.Getuid())
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return self
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) > 2 && f[2] != self {
			if _, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				return f[2]
			}
		}
	}
	return self
}

// identityTimes times localsock.PeerOf on n fresh connections to a socket
// of this process: SO_PEERCRED, the pidfd, /proc/<pid>/status and exe, and
// the account name (from its cache after the first).
func identityTimes(n int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "cabid")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	out := make([]time.Duration, 0, n)
	for range n {
		c, err := net.Dial("unix", filepath.Join(dir, "s"))
		if err != nil {
			return nil, err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return nil, err
		}
		t := time.Now()
		id, err := localsock.PeerOf(s)
		out = append(out, time.Since(t))
		s.Close()
		c.Close()
		if err != nil {
			return nil, err
		}
		if id.PIDGuard == "" {
			return nil, fmt.Errorf("identity of this process without its process details: %+v", id)
		}
	}
	return out, nil
}

// procCounters are a process's CPU time (all its threads, from schedstat,
// in ns) and context switches (voluntary and not).
type procCounters struct {
	cpuNS, switches int64
}

func readProcCounters(pid int) (procCounters, error) {
	var c procCounters
	base := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(base)
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		if b, err := os.ReadFile(filepath.Join(base, t.Name(), "schedstat")); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				c.cpuNS += n
			}
		}
		if b, err := os.ReadFile(filepath.Join(base, t.Name(), "status")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					c.switches += n
				}
			}
		}
	}
	return c, nil
}

// perResolution is the CPU µs and context switches per resolution between
// two readings.
func perResolution(a, b procCounters, n int) (cpuUS, switches float64) {
	if n == 0 {
		return 0, 0
	}
	return float64(b.cpuNS-a.cpuNS) / 1e3 / float64(n), float64(b.switches-a.switches) / float64(n)
}
