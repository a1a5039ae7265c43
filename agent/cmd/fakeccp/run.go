package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/rs/zerolog"
)

// run is the whole program, minus signals and os.Exit, so that tests can
// drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "dev":
		err = runDev(ctx, args[1:], stdout, stderr)
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "load":
		err = runLoad(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "fakeccp: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "fakeccp:", err)
		return 1
	}
	return 0
}

// serveFlags are the flags both serving commands share.
type serveFlags struct {
	listen, admin, path, clientAuth, logLevel string
	frontCert, frontHeader                    string
	http2                                     bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8443", "TLS `address` of the Accounts API; port 0 picks a free port")
	fs.StringVar(&f.admin, "admin", "127.0.0.1:8444", "plain-HTTP `address` of the admin API; \"off\" disables it")
	fs.StringVar(&f.path, "path", fakeccp.DefaultPath, "web-service `path`")
	fs.StringVar(&f.clientAuth, "client-auth", "require", "client certificates: require, require-http, accept or ignore")
	fs.BoolVar(&f.http2, "http2", false, "offer HTTP/2 (default HTTP/1.1 only)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.frontCert, "front-cert", "", "PEM `file` of the client certificate of a TLS front (a reverse proxy set up like IIS); "+
		"only on connections presenting it is the client certificate taken from --front-header")
	fs.StringVar(&f.frontHeader, "front-header", fakeccp.DefaultFrontHeader, "`header` in which the front passes the client certificate")
}

func (f *serveFlags) options(stderr io.Writer) (fakeccp.Options, error) {
	mode, err := fakeccp.ParseClientAuth(f.clientAuth)
	if err != nil {
		return fakeccp.Options{}, err
	}
	lvl, err := zerolog.ParseLevel(f.logLevel)
	if err != nil {
		return fakeccp.Options{}, fmt.Errorf("--log-level: %w", err)
	}
	log := zerolog.New(stderr).Level(lvl).With().Timestamp().Logger()
	o := fakeccp.Options{ClientAuth: mode, HTTP2: f.http2, Path: f.path, AdminAddr: f.admin, Logger: &log}
	if f.frontCert != "" {
		b, err := os.ReadFile(f.frontCert)
		if err != nil {
			return fakeccp.Options{}, fmt.Errorf("--front-cert: %w", err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return fakeccp.Options{}, errors.New("--front-cert: no PEM CERTIFICATE")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fakeccp.Options{}, fmt.Errorf("--front-cert: %w", err)
		}
		o.Front = &fakeccp.Front{Certificate: c, Header: f.frontHeader}
	}
	return o, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fakeccp "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	var sf serveFlags
	sf.register(fs)
	dir := fs.String("dir", "", "`directory` for the dev PKI and fixture (created if missing)")
	var sans multiFlag
	fs.Var(&sans, "san", "extra `host` name or IP for the server certificate (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("dev: --dir is required")
	}
	pki, err := fakeccp.EnsureDevPKI(*dir, sans...)
	if err != nil {
		return err
	}
	fix, err := pki.Fixture()
	if err != nil {
		return err
	}
	opts, err := sf.options(stderr)
	if err != nil {
		return err
	}
	opts.Certificate = &pki.Server
	opts.ClientCAs = pki.CAPool
	return serve(ctx, fix, opts, sf.listen, stdout)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var sf serveFlags
	sf.register(fs)
	config := fs.String("config", "", "fixture `file` (YAML or JSON)")
	certFile := fs.String("tls-cert", "", "server certificate `file` (PEM)")
	keyFile := fs.String("tls-key", "", "server key `file` (PEM)")
	caFile := fs.String("client-ca", "", "`file` of PEM CA certificates that client certificates must chain to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || *certFile == "" || *keyFile == "" {
		return errors.New("serve: --config, --tls-cert and --tls-key are required")
	}
	fix, err := fakeccp.LoadFixture(*config)
	if err != nil {
		return err
	}
	opts, err := sf.options(stderr)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	opts.Certificate = &cert
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		opts.ClientCAs = x509.NewCertPool()
		if !opts.ClientCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("serve: no PEM certificate in %s", *caFile)
		}
	} else if opts.ClientAuth != fakeccp.ClientAuthIgnore {
		return errors.New("serve: --client-ca is required unless --client-auth ignore")
	}
	return serve(ctx, fix, opts, sf.listen, stdout)
}

func serve(ctx context.Context, fix *fakeccp.Fixture, opts fakeccp.Options, listen string, stdout io.Writer) error {
	srv, err := fakeccp.New(fix, opts)
	if err != nil {
		return err
	}
	if err := srv.StartOn(listen); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", srv.URL)
	if srv.AdminURL != "" {
		fmt.Fprintf(stdout, "admin on %s\n", srv.AdminURL)
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", stderr)
	dir := fs.String("dir", "", "dev PKI `directory` (as for fakeccp dev)")
	url := fs.String("url", "", "full request `URL`; default: start an in-process fake from --dir and query sap-prod-admin")
	conc := fs.Int("concurrency", 32, "keep-alive `connections`")
	dur := fs.Duration("duration", 5*time.Second, "stop after this `long` (at most 60s)")
	reqs := fs.Int("requests", 200000, "stop after this `many` requests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("load: --dir is required")
	}
	pki, err := fakeccp.EnsureDevPKI(*dir)
	if err != nil {
		return err
	}
	target := *url
	if target == "" {
		fix, err := pki.Fixture()
		if err != nil {
			return err
		}
		opts := pki.ServerOptions()
		opts.AdminAddr = "off"
		opts.AuditSize = -1
		srv, err := fakeccp.New(fix, opts)
		if err != nil {
			return err
		}
		if err := srv.Start(); err != nil {
			return err
		}
		defer srv.Close()
		target = srv.AccountsURL() + "?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin"
	}
	res, err := fakeccp.LoadTest(ctx, fakeccp.LoadOptions{
		URL: target, TLSConfig: pki.ClientTLSConfig(), Concurrency: *conc, Requests: *reqs, Duration: *dur,
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
