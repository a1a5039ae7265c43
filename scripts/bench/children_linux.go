package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync/atomic"
	"syscall"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/logging"
	"github.com/credagent/credagent/agent/procs"
)

// The harness runs some of what it measures as child processes of itself,
// so that each has its own process (and its own GOMAXPROCS, GC and RSS) as
// in production. The first argument selects the child.
const (
	childFake  = "child-fakeccp" // DIR [CPUPROFILE]: the fake CCP library on the dev PKI in DIR
	childBare  = "child-bare"    // DIR: a bare net/http mTLS server answering a constant body
	childIdle  = "child-idle"    // a trivial Go program that waits: the RSS baseline
	childAgent = "child-agent"   // DIR CPUPROFILE: the agent's daemon in dev mode, CPU-profiled
)

// runChild runs the child named by args[0] and reports whether there was one.
func runChild(args []string) bool {
	if len(args) == 0 {
		return false
	}
	var err error
	switch args[0] {
	case childFake:
		err = serveFake(args[1:])
	case childBare:
		err = serveBare(args[1:])
	case childIdle:
		fmt.Println("ready")
		waitSignal()
	case childAgent:
		err = runAgentProfiled(args[1:])
	case childLocalAPI:
		err = serveLocalAPI(args[1:])
	case childCCP:
		err = runCCPAlone(args[1:])
	default:
		return false
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", args[0], err)
		os.Exit(1)
	}
	return true
}

func waitSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}

// startCPUProfile starts a CPU profile into path when path is not empty and
// returns the function that ends it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func serveFake(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: %s DIR [CPUPROFILE]", childFake)
	}
	pki, err := fakeccp.EnsureDevPKI(args[0])
	if err != nil {
		return err
	}
	fix, err := pki.Fixture()
	if err != nil {
		return err
	}
	opts := pki.ServerOptions()
	opts.AdminAddr = "127.0.0.1:0"
	srv, err := fakeccp.New(fix, opts)
	if err != nil {
		return err
	}
	// Serve on a listener that reads each connection's ServerHello, so that
	// full and resumed handshakes can be told apart (the fake counts only
	// connections), and publish the counts on a small HTTP endpoint.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sl := &sniffListener{Listener: ln}
	if err := srv.Serve(sl, adminLn); err != nil {
		return err
	}
	statsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(statsLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(handshakeCounts{Full: sl.full.Load(), Resumed: sl.resumed.Load(), Other: sl.other.Load()})
	}))
	var stop func()
	if len(args) > 1 {
		if stop, err = startCPUProfile(args[1]); err != nil {
			return err
		}
	}
	fmt.Printf("listening on %s\n", srv.URL)
	fmt.Printf("admin on %s\n", srv.AdminURL)
	fmt.Printf("handshakes on http://%s\n", statsLn.Addr())
	waitSignal()
	if stop != nil {
		stop()
	}
	return srv.Close()
}

// handshakeCounts are the TLS handshakes the fake's listener saw.
type handshakeCounts struct {
	Full    uint64 `json:"full"`
	Resumed uint64 `json:"resumed"`
	Other   uint64 `json:"other"` // not TLS 1.3, or no ServerHello written
}

// sniffListener classifies each accepted connection's handshake by the
// first bytes the server writes on it.
type sniffListener struct {
	net.Listener
	full, resumed, other atomic.Uint64
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, l: l}, nil
}

// sniffConn looks at its first Write. crypto/tls serialises writes, so no
// lock is needed.
type sniffConn struct {
	net.Conn
	l    *sniffListener
	seen bool
}

func (c *sniffConn) Write(b []byte) (int, error) {
	if !c.seen {
		c.seen = true
		switch serverHelloKind(b) {
		case helloFull:
			c.l.full.Add(1)
		case helloResumed:
			c.l.resumed.Add(1)
		default:
			c.l.other.Add(1)
		}
	}
	return c.Conn.Write(b)
}

// bareBody is about the size of the fake's answer for sap-prod-admin.
var bareBody = []byte(`{"Content":"Sap-Pr0d!pass","UserName":"svc_sap","Address":"sap.example.internal","Safe":"RPA-Prod","Folder":"Root","Name":"sap-prod-admin","PolicyID":"WinDomain","LogonDomain":"EXAMPLE","DeviceType":"Operating System","PasswordChangeInProcess":"False"}`)

func serveBare(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: %s DIR", childBare)
	}
	pki, err := fakeccp.EnsureDevPKI(args[0])
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write(bareBody)
		}),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pki.Server},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pki.CAPool,
			NextProtos:   []string{"http/1.1"},
			MinVersion:   tls.VersionTLS12,
		},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	fmt.Printf("listening on https://%s\n", ln.Addr())
	waitSignal()
	return srv.Close()
}

// runAgentProfiled runs the agent as `credagent run --dev DIR` does (same
// daemon, same dev configuration and logs), with a CPU profile written when
// it is stopped. The harness uses it only to explain a missed goal; the
// figures come from bin/credagent.
func runAgentProfiled(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: %s DIR CPUPROFILE", childAgent)
	}
	govern := procs.SmallDaemon() // as credagent run does
	cfg, err := daemon.DevConfig(args[0])
	if err != nil {
		return err
	}
	logs, err := logging.New(daemon.LogOptions(cfg), os.Stderr, nil)
	if err != nil {
		return err
	}
	defer logs.Close()
	stop, err := startCPUProfile(args[1])
	if err != nil {
		return err
	}
	defer stop()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if govern {
		go procs.Govern(ctx, procs.Options{Log: logs.Log})
	}
	err = daemon.Run(ctx, daemon.Options{
		Config: cfg, Dev: true, DevDir: args[0], Log: logs.Log, Audit: logs.Audit, SetLogLevel: logs.SetLevel,
		Ready: func() { fmt.Printf("credagent (dev) listening on %s\n", cfg.Paths.Socket) },
	})
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
