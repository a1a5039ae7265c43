package ccp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// lateCertServer is a server like IIS on Windows Server 2022 with the
// client certificate set per application: over TLS 1.3 it asks for no
// client certificate in the handshake (IIS would ask after it), over TLS
// 1.2 it gets one (IIS by renegotiation; here at the handshake). Requests
// without a certificate get noCert. With ask13 it asks over TLS 1.3 too,
// and answers every request with noCert.
func lateCertServer(t *testing.T, noCert http.HandlerFunc, ask13 bool) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || ask13 {
			noCert(w, r)
			return
		}
		writeJSON(w, 200, account(testPassword, ""))
	})
	srv := startCCP(t, h, func(c *tls.Config) {
		base := c.Clone()
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cfg := base.Clone()
			if slices.Contains(hello.SupportedVersions, tls.VersionTLS13) {
				cfg.MinVersion = tls.VersionTLS13
				if !ask13 {
					cfg.ClientAuth = tls.NoClientCert
				}
			} else {
				cfg.MaxVersion = tls.VersionTLS12
			}
			return cfg, nil
		}
	})
	return srv.URL
}

func TestTLS13LateCertFallback(t *testing.T) {
	p := getPKI(t)
	html500 := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(500)
		w.Write([]byte("<html><body>The request is not supported (0x80070032)</body></html>"))
	}
	reset := func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		_ = conn.(*tls.Conn).NetConn().(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	appap330 := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 403, `{"ErrorCode":"APPAP330E","ErrorMsg":"Could not obtain client certificate details"}`)
	}
	appap306 := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 403, `{"ErrorCode":"APPAP306E","ErrorMsg":"Authentication error"}`)
	}
	pwChange := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, `{"ErrorCode":"APPAP282E","ErrorMsg":"being changed"}`)
	}
	tests := []struct {
		name      string
		noCert    http.HandlerFunc
		ask13     bool
		max       uint16
		ok        bool
		attempts  uint64 // for the first Get
		fallback  bool
		lateFlag  bool
		attempts2 uint64 // for a second Get
	}{
		{name: "500 html page", noCert: html500, ok: true, attempts: 2, fallback: true, attempts2: 1},
		{name: "reset", noCert: reset, ok: true, attempts: 2, fallback: true, attempts2: 1},
		{name: "403 APPAP330E", noCert: appap330, ok: true, attempts: 2, fallback: true, attempts2: 1},
		{name: "capped at 1.2", noCert: appap330, max: tls.VersionTLS12, ok: true, attempts: 1, attempts2: 1},
		{name: "1.3 forced", noCert: appap330, max: tls.VersionTLS13, attempts: 1, lateFlag: true, attempts2: 1},
		// A CCP JSON 500 is an answer, not a missing certificate.
		{name: "password change 500", noCert: pwChange, attempts: 1, attempts2: 1},
		// The server asked in the handshake: its 403 is about the
		// certificate it got, and TLS 1.2 would change nothing.
		{name: "asked at the handshake", noCert: appap306, ask13: true, attempts: 1, attempts2: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := lateCertServer(t, tt.noCert, tt.ask13)
			o := testOptions(t, u)
			o.Retries = 0
			o.TLSMaxVersion = tt.max
			c := newTestClient(t, o, p.client)
			a, err := c.Get(context.Background(), req1)
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if a != nil {
				a.Wipe()
			}
			var e *Error
			if err != nil {
				e = err.(*Error)
				if e.LateCertRequest != tt.lateFlag {
					t.Errorf("LateCertRequest %v: %v", e.LateCertRequest, err)
				}
			}
			st := c.Stats()
			if st.Attempts != tt.attempts || st.Servers[0].TLS12Fallback != tt.fallback {
				t.Fatalf("attempts %d fallback %v, want %d %v", st.Attempts, st.Servers[0].TLS12Fallback, tt.attempts, tt.fallback)
			}
			c.Get(context.Background(), req1)
			if got := c.Stats().Attempts - st.Attempts; got != tt.attempts2 {
				t.Errorf("second Get made %d attempts, want %d", got, tt.attempts2)
			}
		})
	}

	// Both versions refuse alike: the fallback is tried once, found
	// useless, and not tried again; the error names the likely cause.
	t.Run("no better at 1.2", func(t *testing.T) {
		srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { appap330(w, r) }),
			func(c *tls.Config) { c.ClientAuth = tls.NoClientCert })
		o := testOptions(t, srv.URL)
		o.Retries = 0
		c := newTestClient(t, o, p.client)
		_, err := c.Get(context.Background(), req1)
		if err == nil || c.Stats().Attempts != 2 {
			t.Fatalf("err %v attempts %d", err, c.Stats().Attempts)
		}
		_, err = c.Get(context.Background(), req1)
		if e := err.(*Error); !e.LateCertRequest || c.Stats().Attempts != 3 || c.Stats().Servers[0].TLS12Fallback {
			t.Fatalf("second: %v, %+v", err, c.Stats())
		}
	})
}

// TestPoolKeyedOnChain: a new chain for the same leaf gets new connections,
// so that a check right after a chain change tests the new chain.
func TestPoolKeyedOnChain(t *testing.T) {
	p := getPKI(t)
	var chains []int
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chains = append(chains, len(r.TLS.PeerCertificates))
		writeJSON(w, 200, account(testPassword, ""))
	}))
	src := newCertSource(p.client)
	o := testOptions(t, srv.URL)
	c, err := New(o, src.source())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	for range 2 {
		if _, err := c.Get(context.Background(), req1); err != nil {
			t.Fatal(err)
		}
	}
	withCA := p.client
	withCA.Certificate = [][]byte{p.client.Certificate[0], p.clientCA.Raw}
	src.p.Store(&withCA)
	if _, err := c.Get(context.Background(), req1); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.FullHandshakes != 2 || !slices.Equal(chains, []int{1, 1, 2}) {
		t.Fatalf("handshakes %d, chains presented %v", st.FullHandshakes, chains)
	}
}

// TestTrustReasons: the x509 reason reaches the error (and so the audit
// record and the log line, which print it).
func TestTrustReasons(t *testing.T) {
	p := getPKI(t)
	ca, key := makeCA("dated CA")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	now := time.Now()
	wrongName := issue(ca, key, "ccp.test", true, now.Add(-time.Hour), now.Add(time.Hour))
	tmpl := *wrongName.Leaf
	tmpl.DNSNames, tmpl.IPAddresses = []string{"elsewhere.test"}, nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, wrongName.Leaf.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	wrongName.Certificate = [][]byte{der}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, account(testPassword, "")) })
	tests := []struct {
		name string
		cert tls.Certificate
		want string
	}{
		{"expired", issue(ca, key, "ccp.test", true, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), "expired on"},
		{"not yet valid", issue(ca, key, "ccp.test", true, now.Add(24*time.Hour), now.Add(48*time.Hour)), "not valid yet"},
		{"wrong name", wrongName, `not valid for the name "127.0.0.1"`},
		{"unknown authority", p.rogueServer, "authority this store does not trust"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startCCP(t, ok, func(c *tls.Config) { c.Certificates = []tls.Certificate{tt.cert} })
			o := testOptions(t, srv.URL)
			o.CABundle = append(caPEM, p.serverCAPEM...)
			var logs syncBuffer
			o.Log = zerolog.New(&logs)
			o.Retries = 1
			c := newTestClient(t, o, p.client)
			_, err := c.Get(context.Background(), req1)
			if apitype.ClassOf(err) != apitype.ClassVaultUnreachable || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			// The log line says it too (the audit record carries the
			// same Message).
			if !strings.Contains(logs.String(), strings.ReplaceAll(tt.want, `"`, `\"`)) {
				t.Fatalf("log does not say %q:\n%s", tt.want, logs.String())
			}
		})
	}
}
