package fakeccp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// ClientAuth is how the fake asks for client certificates, as IIS does.
type ClientAuth string

const (
	// ClientAuthRequire fails the TLS handshake without a client
	// certificate trusted by Options.ClientCAs (the default).
	ClientAuthRequire ClientAuth = "require"
	// ClientAuthRequireHTTP is IIS's Require done after the handshake:
	// without a certificate the answer is the 403.7 page; an untrusted one
	// gets 403.16, an expired one 403.17.
	ClientAuthRequireHTTP ClientAuth = "require-http"
	// ClientAuthAccept asks for a certificate and goes on without one;
	// an application that needs one then gets APPAP330E. An untrusted
	// certificate gets 403.16, an expired one 403.17.
	ClientAuthAccept ClientAuth = "accept"
	// ClientAuthIgnore never asks for a certificate.
	ClientAuthIgnore ClientAuth = "ignore"
)

// ParseClientAuth parses a ClientAuth mode name.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch m := ClientAuth(strings.ToLower(s)); m {
	case ClientAuthRequire, ClientAuthRequireHTTP, ClientAuthAccept, ClientAuthIgnore:
		return m, nil
	case "":
		return ClientAuthRequire, nil
	}
	return "", fmt.Errorf("fakeccp: client auth mode %q: want require, require-http, accept or ignore", s)
}

// DefaultPath is the web-service path of a default CCP installation.
const DefaultPath = "/AIMWebService"

// Options configure a Server. The zero value is not enough: a server
// certificate is required.
type Options struct {
	// Certificate is the server's TLS certificate. Required.
	Certificate *tls.Certificate
	// ClientCAs verify client certificates. Required unless ClientAuth is
	// ClientAuthIgnore.
	ClientCAs *x509.CertPool
	// ClientAuth defaults to ClientAuthRequire.
	ClientAuth ClientAuth
	// HTTP2 offers h2 in ALPN. Off by default: the fake speaks HTTP/1.1
	// only, like IIS with certificate renegotiation.
	HTTP2 bool
	// Path is the web-service path, matched case-insensitively; default
	// DefaultPath. The Accounts API is Path+"/api/Accounts".
	Path string
	// AdminAddr is where StartOn and Start put the admin API; default
	// "127.0.0.1:0". "off" disables it.
	AdminAddr string
	// MaxURLBytes bounds path plus query; longer requests get 414.
	// Default 4096.
	MaxURLBytes int
	// MaxHeaderBytes bounds the request line and headers; default 16 KiB
	// (HTTP.sys's default). Larger requests get 431.
	MaxHeaderBytes int
	// AuditSize is how many audit records are kept (the most recent);
	// default 10000, negative disables the audit.
	AuditSize int
	// Logger receives the fake's logs; nil discards them. Request logs are
	// at debug level and never include passwords or query strings.
	Logger *zerolog.Logger
	// Front, when set, trusts a TLS-terminating reverse proxy in front of
	// the fake to pass the client certificate in a header. Nil: no header
	// is ever trusted.
	Front *Front
}

// DefaultFrontHeader is the header a Front passes the client certificate in.
const DefaultFrontHeader = "X-SSL-Client-Cert"

// Front is a TLS-terminating reverse proxy set up like IIS (the test
// suite's Apache, agent/ccp/fakeccp/apachefront). It asks the client for
// its certificate, verifies it, and passes it on in Header: PEM, with the
// line breaks as spaces or not, or base64 DER; empty or "(null)" for none.
//
// The fake reads Header only on connections whose own client certificate
// is Certificate, and then per request (a front multiplexes its clients
// over its connections to the fake). Anywhere else the header is ignored,
// so a client cannot claim someone else's certificate by sending it.
type Front struct {
	// Certificate is the front's client certificate towards the fake,
	// which must also be trusted by ClientCAs. Required.
	Certificate *x509.Certificate
	// Header defaults to DefaultFrontHeader.
	Header string
}

// Server is a running fake CCP.
type Server struct {
	// URL is the base URL of the TLS listener, "https://127.0.0.1:port",
	// set by Start and StartOn.
	URL string
	// AdminURL is the base URL of the admin API, "http://127.0.0.1:port";
	// empty when the admin API is off.
	AdminURL string

	opts          Options
	w             *world
	accounts      string // lower-case Path+"/api/accounts"
	log           zerolog.Logger
	faults        atomic.Pointer[Faults]
	counters      counters
	audit         auditLog
	pageCache     map[string][]byte
	parseCache    sync.Map // raw query -> parsedQuery
	parseCacheLen atomic.Int64
	httpSrv       *http.Server
	adminSrv      *http.Server
	closeOnce     sync.Once
	closeErr      error
	serveGroup    sync.WaitGroup
}

// New compiles a fixture into a server. The server does not listen until
// Start or StartOn.
func New(fix *Fixture, opts Options) (*Server, error) {
	if fix == nil {
		return nil, errors.New("fakeccp: New: nil fixture")
	}
	if opts.Certificate == nil {
		return nil, errors.New("fakeccp: New: Options.Certificate is required")
	}
	mode, err := ParseClientAuth(string(opts.ClientAuth))
	if err != nil {
		return nil, err
	}
	opts.ClientAuth = mode
	if mode != ClientAuthIgnore && opts.ClientCAs == nil {
		return nil, errors.New("fakeccp: New: Options.ClientCAs is required unless ClientAuth is ignore")
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	opts.Path = "/" + strings.Trim(opts.Path, "/")
	if opts.AdminAddr == "" {
		opts.AdminAddr = "127.0.0.1:0"
	}
	if opts.MaxURLBytes <= 0 {
		opts.MaxURLBytes = 4096
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 16 << 10
	}
	if opts.AuditSize == 0 {
		opts.AuditSize = 10000
	}
	if opts.Front != nil {
		f := *opts.Front
		if f.Certificate == nil {
			return nil, errors.New("fakeccp: New: Options.Front.Certificate is required")
		}
		if mode == ClientAuthIgnore {
			return nil, errors.New("fakeccp: New: a Front needs client certificates; ClientAuth is ignore")
		}
		if f.Header == "" {
			f.Header = DefaultFrontHeader
		}
		opts.Front = &f
	}
	w, err := compile(fix)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, w: w, log: zerolog.Nop()}
	if opts.Logger != nil {
		s.log = *opts.Logger
	}
	s.accounts = strings.ToLower(opts.Path + "/api/Accounts")
	f := fix.Faults.Faults()
	if err := f.validate(); err != nil {
		return nil, err
	}
	s.faults.Store(&f)
	s.audit.init(opts.AuditSize)
	s.pageCache = map[string][]byte{}
	for _, p := range []iisPage{pageNotFound, pageCertRequired, pageCertUntrusted, pageCertExpired, pageURLTooLong, pageMethodNotAllowed} {
		s.pageCache[p.code] = p.html()
	}
	return s, nil
}

// Start listens on 127.0.0.1 with a free port, and on the admin address.
func (s *Server) Start() error { return s.StartOn("127.0.0.1:0") }

// StartOn listens on addr (port 0 picks a free port) and serves in the
// background until Close.
func (s *Server) StartOn(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeccp: listen %s: %w", addr, err)
	}
	var adminLn net.Listener
	if !strings.EqualFold(s.opts.AdminAddr, "off") {
		adminLn, err = net.Listen("tcp", s.opts.AdminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("fakeccp: listen admin %s: %w", s.opts.AdminAddr, err)
		}
	}
	if err := s.Serve(ln, adminLn); err != nil {
		return err
	}
	// Report the address as asked for ("0.0.0.0", not the dual-stack
	// "[::]" the listener shows), with the port actually bound.
	s.URL = "https://" + displayAddr(addr, ln.Addr())
	if adminLn != nil {
		s.AdminURL = "http://" + displayAddr(s.opts.AdminAddr, adminLn.Addr())
	}
	return nil
}

func displayAddr(asked string, got net.Addr) string {
	host, _, err := net.SplitHostPort(asked)
	_, port, err2 := net.SplitHostPort(got.String())
	if err != nil || err2 != nil || host == "" {
		return got.String()
	}
	return net.JoinHostPort(host, port)
}

// Serve serves on listeners the caller made; adminLn may be nil. It returns
// at once; Close stops both.
func (s *Server) Serve(ln, adminLn net.Listener) error {
	if s.httpSrv != nil {
		return errors.New("fakeccp: server already started")
	}
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{*s.opts.Certificate},
		ClientCAs:    s.opts.ClientCAs,
		MinVersion:   tls.VersionTLS12,
	}
	switch s.opts.ClientAuth {
	case ClientAuthRequire:
		tlsCfg.ClientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthRequireHTTP, ClientAuthAccept:
		// Verified per connection in the handler, so that failures get
		// IIS's pages rather than a failed handshake.
		tlsCfg.ClientAuth = tls.RequestClientCert
	case ClientAuthIgnore:
		tlsCfg.ClientAuth = tls.NoClientCert
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetHTTP2(s.opts.HTTP2)
	errLog := log.New(logWriter{s.log}, "", 0)
	s.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveAccounts),
		TLSConfig:         tlsCfg,
		Protocols:         protos,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connInfo{})
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.counters.connections.Add(1)
			}
		},
	}
	if !s.opts.HTTP2 {
		s.httpSrv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	s.URL = "https://" + ln.Addr().String()
	s.serveGroup.Add(1)
	go func() {
		defer s.serveGroup.Done()
		if err := s.httpSrv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("fakeccp: serve")
		}
	}()
	if adminLn != nil {
		s.adminSrv = &http.Server{
			Handler:           s.adminHandler(),
			ReadHeaderTimeout: 30 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		}
		s.AdminURL = "http://" + adminLn.Addr().String()
		s.serveGroup.Add(1)
		go func() {
			defer s.serveGroup.Done()
			if err := s.adminSrv.Serve(adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error().Err(err).Msg("fakeccp: serve admin")
			}
		}()
	}
	s.log.Info().Str("addr", ln.Addr().String()).Str("client_auth", string(s.opts.ClientAuth)).
		Bool("http2", s.opts.HTTP2).Msg("fakeccp: serving")
	return nil
}

// Addr returns the host:port of the TLS listener.
func (s *Server) Addr() string { return strings.TrimPrefix(s.URL, "https://") }

// AccountsURL is URL + Path + "/api/Accounts", without a query.
func (s *Server) AccountsURL() string { return s.URL + s.opts.Path + "/api/Accounts" }

// Path is the web-service path served.
func (s *Server) Path() string { return s.opts.Path }

// Shutdown stops the listeners and waits for open requests, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.httpSrv != nil {
			errs = append(errs, s.httpSrv.Shutdown(ctx))
		}
		if s.adminSrv != nil {
			errs = append(errs, s.adminSrv.Shutdown(ctx))
		}
		s.serveGroup.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Close stops the server, giving open requests up to five seconds, then
// closing their connections.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		if s.httpSrv != nil {
			s.httpSrv.Close()
		}
		if s.adminSrv != nil {
			s.adminSrv.Close()
		}
		return nil
	}
	return err
}

// ErrNoAccount is returned by SetPassword and SetChangeInProgress for an
// account the fixture does not have.
var ErrNoAccount = errors.New("fakeccp: no such account")

// SetPassword sets an account's password (folder "" is Root). Names are
// matched case-insensitively.
func (s *Server) SetPassword(safe, folder, object, password string) error {
	a := s.w.byKey[accountKey(safe, folder, object)]
	if a == nil {
		return fmt.Errorf("%w: %s\\%s\\%s", ErrNoAccount, safe, folder, object)
	}
	a.setState(password, a.state.Load().changing)
	return nil
}

// SetChangeInProgress marks an account's password as being changed by the
// CPM, or not.
func (s *Server) SetChangeInProgress(safe, folder, object string, inProgress bool) error {
	a := s.w.byKey[accountKey(safe, folder, object)]
	if a == nil {
		return fmt.Errorf("%w: %s\\%s\\%s", ErrNoAccount, safe, folder, object)
	}
	a.setState(a.state.Load().password, inProgress)
	return nil
}

// connKey carries a *connInfo in each connection's context.
type connKey struct{}

// connInfo is what the fake learns about a connection on its first
// request: the client certificate, verified once.
type connInfo struct {
	once   sync.Once
	cert   *x509.Certificate // verified client certificate, or nil
	serial string            // lower-case hex
	page   *iisPage          // IIS page to answer with, if verification failed
	addr   netip.Addr
	front  bool // the connection is the Front's: each request names its client
}

func (s *Server) conn(r *http.Request) *connInfo {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if ci == nil {
		ci = &connInfo{}
	}
	ci.once.Do(func() {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ci.addr = ap.Addr().Unmap()
		}
		var chain []*x509.Certificate
		if r.TLS != nil {
			chain = r.TLS.PeerCertificates
		}
		if f := s.opts.Front; f != nil && len(chain) > 0 && chain[0].Equal(f.Certificate) {
			ci.front = true
			return
		}
		s.identify(ci, chain)
	})
	if ci.front {
		// A fresh identity per request, from the front's header.
		rc := &connInfo{addr: ci.addr, front: true}
		cert, err := parseFrontCert(r.Header.Get(s.opts.Front.Header))
		switch {
		case err != nil:
			rc.page = &pageCertUntrusted
		case cert == nil:
			s.identify(rc, nil)
		default:
			s.identify(rc, []*x509.Certificate{cert})
		}
		return rc
	}
	return ci
}

// identify sets ci's client identity from the peer's chain (nil: none), or
// the IIS page the request gets instead.
func (s *Server) identify(ci *connInfo, chain []*x509.Certificate) {
	if len(chain) == 0 {
		if s.opts.ClientAuth == ClientAuthRequireHTTP {
			ci.page = &pageCertRequired
		}
		return
	}
	leaf := chain[0]
	if s.opts.ClientAuth == ClientAuthRequireHTTP || s.opts.ClientAuth == ClientAuthAccept || ci.front {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         s.opts.ClientCAs,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			var ie x509.CertificateInvalidError
			if errors.As(err, &ie) && ie.Reason == x509.Expired {
				ci.page = &pageCertExpired
			} else {
				ci.page = &pageCertUntrusted
			}
			return
		}
	}
	if s.opts.ClientAuth != ClientAuthIgnore {
		ci.cert = leaf
		ci.serial = leaf.SerialNumber.Text(16)
	}
}

// maxFrontCertBytes bounds the header a Front passes a certificate in.
const maxFrontCertBytes = 16 << 10

// parseFrontCert reads a Front's certificate header: PEM (its line breaks
// turned into spaces by the front, or not) or bare base64 DER. Empty or
// "(null)" (Apache's word for an unset variable) is no certificate.
func parseFrontCert(v string) (*x509.Certificate, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "(null)" {
		return nil, nil
	}
	if len(v) > maxFrontCertBytes {
		return nil, errors.New("fakeccp: front certificate header too long")
	}
	v = strings.TrimPrefix(v, "-----BEGIN CERTIFICATE-----")
	v = strings.TrimSuffix(v, "-----END CERTIFICATE-----")
	v = strings.Join(strings.Fields(v), "")
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("fakeccp: front certificate header: %w", err)
	}
	return x509.ParseCertificate(der)
}

// logWriter sends net/http's own error log to zerolog at debug level,
// dropping its per-request warning about ';' in queries: CCP queries
// contain ';' by design.
type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if !strings.Contains(msg, "semicolon") {
		w.l.Debug().Msg(msg)
	}
	return len(p), nil
}

var _ io.Writer = logWriter{}
