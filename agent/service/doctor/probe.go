package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/ccp"
)

// Store is what probing one CCP store needs. The agent fills it from its
// state (state.Store plus the application's certificate), so the client
// certificate's private key never leaves the agent's process.
type Store struct {
	Name         string
	Servers      []string // https://host[:port]
	Path         string   // default /AIMWebService
	AppID        string
	Safe         string
	Folder       string
	HealthObject string // the account requested to prove the client certificate works
	CABundle     []byte // PEM, added to the system roots
	Pins         []string
	ClientCert   *tls.Certificate
	// Roots replaces the system roots (tests). Nil: the system pool.
	Roots *x509.CertPool
}

// ProbeStore checks each server of s in turn: DNS, TCP, the TLS handshake
// with the chain (and pins) validated, and the client certificate accepted,
// by requesting the health-check object. It never sends an empty AppID or
// object, which would only fill CCP's error log.
func ProbeStore(ctx context.Context, s Store) []Result {
	var out []Result
	if len(s.Servers) == 0 {
		return []Result{{Name: "store " + s.Name, Level: Fail, Detail: "no servers", Fix: "fix the store's delivery in the portal"}}
	}
	for _, srv := range s.Servers {
		out = append(out, probeServer(ctx, s, srv)...)
	}
	return out
}

func probeServer(ctx context.Context, s Store, srv string) []Result {
	prefix := "store " + s.Name + " " + srv
	r := func(step string, l Level, detail, fix string) Result {
		return Result{Name: prefix + " " + step, Level: l, Detail: detail, Fix: fix}
	}
	u, err := url.Parse(srv)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return []Result{r("url", Fail, fmt.Sprintf("%q is not an https:// URL", srv), "fix the store in the portal")}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	var out []Result

	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return append(out, r("dns", Fail, err.Error(), "check the name and this machine's DNS servers"))
	}
	out = append(out, r("dns", Pass, strings.Join(addrs, ", "), ""))

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return append(out, r("tcp", Fail, err.Error(), "check firewalls and proxies between this machine and "+host+":"+port))
	}
	out = append(out, r("tcp", Pass, conn.RemoteAddr().String(), ""))

	// Trust and pins exactly as the CCP client does.
	var roots *x509.CertPool
	if s.Roots == nil {
		roots, err = ccp.LoadRoots(s.CABundle)
	} else {
		roots = s.Roots.Clone()
		if len(s.CABundle) > 0 && !roots.AppendCertsFromPEM(s.CABundle) {
			err = errors.New("CA bundle holds no PEM certificate")
		}
	}
	if err != nil {
		conn.Close()
		return append(out, r("tls", Fail, "the store's "+err.Error(), "fix the CA bundle in the portal"))
	}
	pins, err := ccp.ParsePins(s.Pins)
	if err != nil {
		conn.Close()
		return append(out, r("tls", Fail, "the store's "+err.Error(), "fix the pins in the portal"))
	}
	tcfg := &tls.Config{
		ServerName:    host,
		RootCAs:       roots,
		MinVersion:    tls.VersionTLS12,
		Renegotiation: tls.RenegotiateOnceAsClient, // IIS asks for the client certificate this way
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if s.ClientCert == nil {
				return &tls.Certificate{}, nil
			}
			return s.ClientCert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(pins) > 0 && !ccp.PinsMatch(cs.VerifiedChains, pins) {
				return errors.New("no certificate in the server's chain matches the store's pins")
			}
			return nil
		},
	}
	tc := tls.Client(conn, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		return append(out, r("tls", Fail, err.Error(), "check the server's certificate chain against the store's CA bundle and pins"))
	}
	cs := tc.ConnectionState()
	out = append(out, r("tls", Pass, fmt.Sprintf("%s, chain to %q valid", tls.VersionName(cs.Version), cs.VerifiedChains[0][len(cs.VerifiedChains[0])-1].Subject.CommonName), ""))
	tc.Close()

	if s.HealthObject == "" {
		return append(out, r("client certificate", Warn, "not checked: the store has no health-check object",
			"name a health-check account for the store in the portal (an empty request would fill CCP's error log)"))
	}
	if s.ClientCert == nil {
		return append(out, r("client certificate", Fail, "no certificate for application "+s.AppID, "have the portal deliver the application's certificate"))
	}
	out = append(out, healthRequest(ctx, s, u, tcfg, r))
	return out
}

func healthRequest(ctx context.Context, s Store, u *url.URL, tcfg *tls.Config, r func(string, Level, string, string) Result) Result {
	p := s.Path
	if p == "" {
		p = "/AIMWebService"
	}
	q := url.Values{"AppID": {s.AppID}, "Object": {s.HealthObject}}
	if s.Safe != "" {
		q.Set("Safe", s.Safe)
	}
	if s.Folder != "" {
		q.Set("Folder", s.Folder)
	}
	ru := *u
	ru.Path = strings.TrimRight(p, "/") + "/api/Accounts"
	ru.RawQuery = q.Encode()
	tr := &http.Transport{TLSClientConfig: tcfg, ForceAttemptHTTP2: false, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ru.String(), nil)
	req.Header.Set("X-CredAgent-Reason", "credagent doctor health check")
	// RoundTrip, not an http.Client: it follows no redirect (which would
	// take the application's client certificate wherever the answer
	// points), and its errors are not *url.Error, whose text holds the
	// whole URL with its query (AppID, safe, folder, object).
	resp, err := tr.RoundTrip(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return r("client certificate", Fail, err.Error(), "the server refused the TLS session: check that CCP trusts the application certificate's issuer")
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return r("client certificate", Pass, "accepted; health-check object "+s.HealthObject+" retrieved", "")
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return r("client certificate", Fail, resp.Status+": application "+s.AppID+" failed authentication",
			"in CyberArk, allow the certificate (serial or issuer) for application "+s.AppID+" and the machine's address")
	case resp.StatusCode == http.StatusNotFound:
		return r("client certificate", Warn, "accepted, but the health-check object was not found ("+resp.Status+")",
			"create "+s.HealthObject+" in safe "+s.Safe+" or fix the store's health-check object")
	default:
		return r("client certificate", Warn, "the TLS session was accepted, CCP answered "+resp.Status, "see CCP's log for the request from this machine")
	}
}
