package main

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

// firstWrite records the first Write on a connection.
type firstWrite struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *firstWrite) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.first == nil {
		c.first = append([]byte{}, b...)
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// handshake runs one TLS handshake over loopback TCP and returns the
// server's first write.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	fw := &firstWrite{Conn: a}
	srv := tls.Server(fw, srvCfg)
	cli := tls.Client(b, cliCfg)
	errc := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			// Let the client read its session ticket.
			_, err = srv.Write([]byte("x"))
		}
		errc <- err
	}()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := cli.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cli.Close()
	srv.Close()
	return fw.first
}

func TestServerHelloKind(t *testing.T) {
	pki, err := fakeccp.EnsureDevPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvCfg := &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.CAPool}
	cliCfg := pki.ClientTLSConfig()
	cliCfg.ServerName = "localhost"
	cliCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	first := handshake(t, srvCfg, cliCfg)
	second := handshake(t, srvCfg, cliCfg)
	tls12 := cliCfg.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	tls12.ClientSessionCache = nil
	old := handshake(t, srvCfg, tls12)

	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"first TLS 1.3 handshake is full", first, helloFull},
		{"second one resumes", second, helloResumed},
		{"TLS 1.2 is not read", old, helloUnknown},
		{"empty", nil, helloUnknown},
		{"not a handshake record", []byte{23, 3, 3, 0, 1, 0}, helloUnknown},
		{"truncated", first[:20], helloUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := serverHelloKind(tt.in); got != tt.want {
				t.Errorf("serverHelloKind = %d, want %d", got, tt.want)
			}
		})
	}
}
