package fakeccp_test

import (
	"crypto/tls"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

// authFixture has one application per authentication method.
const authFixture = `
applications:
  - appID: SerialApp
    authentication:
      certificateSerialNumbers: ["0A:BC:DE:F0:12"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: SubjectApp
    authentication:
      certificateAttributes:
        subject: ["CN=attr-client, O=credagent dev"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: IssuerApp
    authentication:
      certificateAttributes:
        issuer: ["CN=credagent fakeccp dev CA"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: SANApp
    authentication:
      certificateAttributes:
        subjectAlternativeName: ["DNS Name=rpa01.example.internal", "IP:10.1.2.3"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: LoopbackApp
    authentication:
      allowedMachines: ["127.0.0.0/8", "::1"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: RemoteApp
    authentication:
      allowedMachines: ["10.255.255.1"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: BothApp
    authentication:
      certificateSerialNumbers: ["abcdef012"]
      allowedMachines: ["10.0.0.0/8"]
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: OpenApp
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: ListOnlyApp
    safes: [{name: S, permissions: [List]}]
safes:
  - name: S
    accounts:
      - {name: acct, password: pw}
`

func TestApplicationAuthentication(t *testing.T) {
	p := dev(t)
	fix, err := fakeccp.ParseFixture("auth.yaml", []byte(authFixture))
	if err != nil {
		t.Fatal(err)
	}
	mint := func(o fakeccp.ClientCertOptions) tls.Certificate {
		c, err := p.MintClientCert(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	serialCert := mint(fakeccp.ClientCertOptions{Serial: big.NewInt(0xabcdef012)})
	otherCert := mint(fakeccp.ClientCertOptions{Serial: big.NewInt(0x6300014713a1)})
	subjectCert := mint(fakeccp.ClientCertOptions{CommonName: "attr-client"})
	sanCert := mint(fakeccp.ClientCertOptions{DNSNames: []string{"RPA01.example.internal"}})

	srv := start(t, fix, nil)
	tests := []struct {
		name   string
		cert   *tls.Certificate
		appID  string
		status int
		msg    string
	}{
		{"serial registered (written with colons and upper case)", &serialCert, "SerialApp", 200, ""},
		{"serial not registered: lower-case hex in the message", &otherCert, "SerialApp", 403,
			`Authentication error for App ID [SerialApp]. Reason: APPAP133E Failed to verify application authentication data: CertificateSN "6300014713a1" is unauthorized`},
		{"subject matches", &subjectCert, "SubjectApp", 200, ""},
		{"subject does not match", &otherCert, "SubjectApp", 403, ""},
		{"issuer matches", &otherCert, "IssuerApp", 200, ""},
		{"SAN matches", &sanCert, "SANApp", 200, ""},
		{"SAN does not match", &otherCert, "SANApp", 403, ""},
		{"allowed machine CIDR", &otherCert, "LoopbackApp", 200, ""},
		{"allowed machine elsewhere", &otherCert, "RemoteApp", 403, ""},
		{"every method must pass", &serialCert, "BothApp", 403, ""},
		{"no method: anyone", &otherCert, "OpenApp", 200, ""},
		{"List without Retrieve: the 404 of a missing object", &otherCert, "ListOnlyApp", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, client(t, *tt.cert), srv.AccountsURL()+"?AppID="+tt.appID+"&Safe=S&Object=acct")
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.raw)
			}
			if tt.status == 403 && a.str("ErrorCode") != "APPAP306E" {
				t.Errorf("ErrorCode %q, want APPAP306E", a.str("ErrorCode"))
			}
			if tt.msg != "" && a.str("ErrorMsg") != tt.msg {
				t.Errorf("ErrorMsg\n got %q\nwant %q", a.str("ErrorMsg"), tt.msg)
			}
		})
	}
}

// TestClientAuthModes covers IIS's Require and Accept, at the handshake
// and after it.
func TestClientAuthModes(t *testing.T) {
	p := dev(t)
	expired, err := p.MintClientCert(fakeccp.ClientCertOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	other, err := fakeccp.EnsureDevPKI(t.TempDir()) // another CA
	if err != nil {
		t.Fatal(err)
	}
	untrusted := other.App
	q := "?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin"
	ipq := "?AppID=IPApp&Safe=RPA-Prod&Object=sap-prod-admin"

	type row struct {
		name      string
		certs     []tls.Certificate
		query     string
		handshake bool   // the TLS handshake must fail
		status    int    // else this status
		code      string // ErrorCode, or the IIS page in the body
	}
	modes := []struct {
		mode fakeccp.ClientAuth
		rows []row
	}{
		{fakeccp.ClientAuthRequire, []row{
			{"app cert", []tls.Certificate{p.App}, q, false, 200, ""},
			{"no cert", nil, q, true, 0, ""},
			{"untrusted cert", []tls.Certificate{untrusted}, q, true, 0, ""},
			{"expired cert", []tls.Certificate{expired}, q, true, 0, ""},
		}},
		{fakeccp.ClientAuthRequireHTTP, []row{
			{"app cert", []tls.Certificate{p.App}, q, false, 200, ""},
			{"no cert: 403.7", nil, q, false, 403, "HTTP Error 403.7"},
			{"untrusted cert: 403.16", []tls.Certificate{untrusted}, q, false, 403, "HTTP Error 403.16"},
			{"expired cert: 403.17", []tls.Certificate{expired}, q, false, 403, "HTTP Error 403.17"},
		}},
		{fakeccp.ClientAuthAccept, []row{
			{"app cert", []tls.Certificate{p.App}, q, false, 200, ""},
			{"no cert, app needs one: APPAP330E", nil, q, false, 403, "APPAP330E"},
			{"no cert, app needs none", nil, ipq, false, 403, "APPAP306E"},
			{"untrusted cert: 403.16", []tls.Certificate{untrusted}, q, false, 403, "HTTP Error 403.16"},
		}},
		{fakeccp.ClientAuthIgnore, []row{
			{"cert not asked for: APPAP330E", []tls.Certificate{p.App}, q, false, 403, "APPAP330E"},
		}},
	}
	for _, m := range modes {
		t.Run(string(m.mode), func(t *testing.T) {
			srv := start(t, nil, func(o *fakeccp.Options) { o.ClientAuth = m.mode })
			for _, r := range m.rows {
				t.Run(r.name, func(t *testing.T) {
					resp, err := client(t, r.certs...).Get(srv.AccountsURL() + r.query)
					if r.handshake {
						if err == nil {
							resp.Body.Close()
							t.Fatalf("want a failed handshake, got %d", resp.StatusCode)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					a := get(t, client(t, r.certs...), srv.AccountsURL()+r.query)
					if a.status != r.status {
						t.Fatalf("status %d, want %d: %s", a.status, r.status, a.raw)
					}
					if strings.HasPrefix(r.code, "HTTP Error") {
						if a.ctype != "text/html" || !strings.Contains(a.raw, r.code) {
							t.Errorf("want an IIS page with %q, got %s %s", r.code, a.ctype, a.raw)
						}
					} else if r.code != "" && a.str("ErrorCode") != r.code {
						t.Errorf("ErrorCode %q, want %q (%s)", a.str("ErrorCode"), r.code, a.raw)
					}
					if r.code == "APPAP330E" && a.str("ErrorMsg") != "Failed to verify application authentication data: Could not obtain client certificate details" {
						t.Errorf("ErrorMsg %q", a.str("ErrorMsg"))
					}
				})
			}
		})
	}
}

// TestOpenSettings covers the settings for points ccp-api.md leaves open.
func TestOpenSettings(t *testing.T) {
	fix, err := fakeccp.ParseFixture("open.yaml", []byte(`
settings:
  noCertificateStatus: 401
  propertyCase: sensitive
  objectCase: insensitive
  regexpAnchored: true
  trustForwardedFor: true
  queryFolderDefault: true
applications:
  - appID: CertApp
    authentication: {certificateSerialNumbers: ["01"]}
    safes: [{name: S, permissions: [Retrieve, List]}]
  - appID: LBApp
    authentication: {allowedMachines: ["10.255.255.1"]}
    safes: [{name: S, permissions: [Retrieve, List]}]
safes:
  - name: S
    accounts:
      - {name: Acct, password: pw, properties: {UserName: Admin}}
      - {name: sub, folder: 'Root\F', password: pw}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, fix, func(o *fakeccp.Options) { o.ClientAuth = fakeccp.ClientAuthAccept })
	c := appClient(t)
	tests := []struct {
		name   string
		query  string
		xff    string
		status int
	}{
		{"APPAP330E status", "AppID=CertApp&Safe=S&Object=Acct", "", 403},
		{"object case-insensitive", "AppID=LBApp&Safe=S&Object=acct", "10.255.255.1", 200},
		{"property case-sensitive", "AppID=LBApp&Safe=S&UserName=admin", "10.255.255.1", 404},
		{"property exact case", "AppID=LBApp&Safe=S&UserName=Admin", "10.255.255.1", 200},
		{"regexp anchored: partial fails", "AppID=LBApp&Query=Safe=S;Object=Acc&QueryFormat=Regexp", "10.255.255.1", 404},
		{"regexp anchored: whole matches", "AppID=LBApp&Query=Safe=S;Object=Acc.*&QueryFormat=Regexp", "10.255.255.1", 200},
		{"X-Forwarded-For trusted", "AppID=LBApp&Safe=S&Object=Acct", "10.255.255.1, 192.0.2.1", 200},
		{"X-Forwarded-For elsewhere", "AppID=LBApp&Safe=S&Object=Acct", "192.0.2.1", 403},
		{"Query gets Folder=Root", "AppID=LBApp&Query=Safe=S;Object=sub", "10.255.255.1", 404},
	}
	// CertApp presents the DemoApp cert, unregistered: 403 APPAP306E; a
	// client without a cert gets APPAP330E with the configured status.
	noCert := client(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := c
			status := tt.status
			if strings.HasPrefix(tt.name, "APPAP330E") {
				cl, status = noCert, 401
			}
			req, _ := http.NewRequest("GET", srv.AccountsURL()+"?"+tt.query, nil)
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != status {
				t.Errorf("status %d, want %d", resp.StatusCode, status)
			}
		})
	}
}
