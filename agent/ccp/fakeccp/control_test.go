package fakeccp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/rs/zerolog"
)

const sapQuery = "?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin"

func admin(t *testing.T, srv *fakeccp.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.AdminURL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminAPI(t *testing.T) {
	srv := start(t, nil, nil)
	c := appClient(t)

	if st, body := admin(t, srv, "GET", "/healthz", ""); st != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", st, body)
	}

	// Rotate a password.
	if st, body := admin(t, srv, "POST", "/accounts/password", `{"safe":"RPA-Prod","object":"sap-prod-admin","password":"N3w\"pass"}`); st != 204 {
		t.Fatalf("set password: %d %s", st, body)
	}
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.str("Content") != `N3w"pass` {
		t.Errorf("after rotation Content = %q", a.str("Content"))
	}
	if st, _ := admin(t, srv, "POST", "/accounts/password", `{"safe":"RPA-Prod","object":"nosuch","password":"x"}`); st != 404 {
		t.Errorf("unknown account: %d", st)
	}
	if st, _ := admin(t, srv, "POST", "/accounts/password", `{"safe":"RPA-Prod","object":"sap-prod-admin","pasword":"x"}`); st != 400 {
		t.Errorf("misspelt field: %d", st)
	}

	// Toggle a change in progress.
	if st, body := admin(t, srv, "POST", "/accounts/change", `{"safe":"RPA-Prod","folder":"Root","object":"sap-prod-admin","inProgress":true}`); st != 204 {
		t.Fatalf("set change: %d %s", st, body)
	}
	if a := get(t, c, srv.AccountsURL()+sapQuery+"&FailRequestOnPasswordChange=true"); a.str("ErrorCode") != "APPAP282E" {
		t.Errorf("during change: %s", a.raw)
	}
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.str("PasswordChangeInProcess") != "True" {
		t.Errorf("during change: %s", a.raw)
	}
	admin(t, srv, "POST", "/accounts/change", `{"safe":"RPA-Prod","object":"sap-prod-admin","inProgress":false}`)

	// Faults.
	if st, body := admin(t, srv, "PUT", "/faults", `{"status":503,"errorCode":"APPAP007E","errorMsg":"down"}`); st != 204 {
		t.Fatalf("set faults: %d %s", st, body)
	}
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.status != 503 || a.str("ErrorCode") != "APPAP007E" {
		t.Errorf("status fault: %d %s", a.status, a.raw)
	}
	if st, body := admin(t, srv, "GET", "/faults", ""); st != 200 || !strings.Contains(body, `"status": 503`) {
		t.Errorf("get faults: %d %s", st, body)
	}
	admin(t, srv, "PUT", "/faults", `{"status":502}`)
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.status != 502 || a.ctype != "text/html" {
		t.Errorf("HTML status fault: %d %s", a.status, a.ctype)
	}
	admin(t, srv, "PUT", "/faults", `{"latency":"150ms"}`)
	t0 := time.Now()
	get(t, c, srv.AccountsURL()+sapQuery)
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Errorf("latency fault: answered in %v", d)
	}
	admin(t, srv, "PUT", "/faults", `{"resetRate":1}`)
	if resp, err := c.Get(srv.AccountsURL() + sapQuery); err == nil {
		resp.Body.Close()
		t.Errorf("reset fault: got %d", resp.StatusCode)
	}
	admin(t, srv, "PUT", "/faults", `{"vaultDown":true}`)
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.status != 400 || a.str("ErrorCode") != "APPAP007E" {
		t.Errorf("vault down: %d %s", a.status, a.raw)
	}
	if st, _ := admin(t, srv, "PUT", "/faults", `{"resetRate":2}`); st != 400 {
		t.Errorf("bad rate accepted: %d", st)
	}
	if st, _ := admin(t, srv, "DELETE", "/faults", ""); st != 204 {
		t.Errorf("clear faults: %d", st)
	}
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.status != 200 {
		t.Errorf("after clearing faults: %d", a.status)
	}

	// Counters and audit.
	st, body := admin(t, srv, "GET", "/counters", "")
	var cnt fakeccp.Counters
	if err := json.Unmarshal([]byte(body), &cnt); err != nil || st != 200 {
		t.Fatalf("counters: %d %s %v", st, body, err)
	}
	if cnt.Requests < 8 || cnt.Resets < 1 || cnt.ByStatus[200] < 3 || cnt.ByCode["APPAP282E"] != 1 {
		t.Errorf("counters: %+v", cnt)
	}
	st, body = admin(t, srv, "GET", "/audit?limit=2", "")
	var recs []fakeccp.AuditRecord
	if err := json.Unmarshal([]byte(body), &recs); err != nil || st != 200 || len(recs) != 2 {
		t.Fatalf("audit: %d %s %v", st, body, err)
	}
	last := recs[1]
	if last.AppID != "DemoApp" || last.Query != "Safe=RPA-Prod;Folder=Root;Object=sap-prod-admin" ||
		last.Code != "OK" || last.ClientSerial != dev(t).AppSerial || last.Object != `RPA-Prod\Root\sap-prod-admin` {
		t.Errorf("audit record: %+v", last)
	}
	if _, body := admin(t, srv, "GET", "/audit", ""); strings.Contains(body, "N3w") || strings.Contains(body, "Sap-Pr0d") {
		t.Errorf("audit holds a password: %s", body)
	}
	admin(t, srv, "DELETE", "/counters", "")
	admin(t, srv, "DELETE", "/audit", "")
	if c := srv.Counters(); c.Requests != 0 || len(c.ByCode) != 0 {
		t.Errorf("after reset: %+v", c)
	}
	if a := srv.Audit(); len(a) != 0 {
		t.Errorf("after reset: %d records", len(a))
	}
}

func TestGoControls(t *testing.T) {
	srv := start(t, nil, func(o *fakeccp.Options) { o.AuditSize = 3 })
	c := appClient(t)
	if err := srv.SetPassword("rpa-prod", "", "sap-prod-admin", "from-go"); err != nil {
		t.Fatal(err)
	}
	if a := get(t, c, srv.AccountsURL()+sapQuery); a.str("Content") != "from-go" {
		t.Errorf("Content %q", a.str("Content"))
	}
	if err := srv.SetChangeInProgress("RPA-Prod", `Root\Legacy`, "legacy-db", true); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetPassword("RPA-Prod", "", "nosuch", "x"); err == nil {
		t.Error("SetPassword on a missing account succeeded")
	}
	if err := srv.SetFaults(fakeccp.Faults{LatencyRate: -1}); err == nil {
		t.Error("SetFaults accepted a negative rate")
	}
	for range 5 {
		get(t, c, srv.AccountsURL()+sapQuery)
	}
	if n := len(srv.Audit()); n != 3 {
		t.Errorf("audit ring kept %d, want 3", n)
	}
	cnt := srv.Counters()
	if cnt.Connections != 1 {
		t.Errorf("keep-alive: %d connections for 6 requests", cnt.Connections)
	}
}

// TestLogsHoldNoSecrets checks that debug logs carry neither passwords nor
// query strings.
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf agenttest.LockedBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	srv := start(t, nil, func(o *fakeccp.Options) { o.Logger = &log })
	c := appClient(t)
	admin(t, srv, "POST", "/accounts/password", `{"safe":"RPA-Prod","object":"sap-prod-admin","password":"Adm1n-Set!pw"}`)
	get(t, c, srv.AccountsURL()+sapQuery+"&Reason=secret-reason")
	get(t, c, srv.AccountsURL()+"?AppID=DemoApp&Safe=RPA-Prod&Object=nosuch-object")
	get(t, c, srv.AccountsURL()+"?AppID=DemoApp&Query=Safe=RPA-Prod;Object=x;y")
	srv.Close()
	out := buf.String()
	if !strings.Contains(out, "DemoApp") {
		t.Fatalf("no request logs: %s", out)
	}
	for _, bad := range []string{"Sap-Pr0d", "Adm1n-Set!pw", "secret-reason", "nosuch-object", "Object=", "Query="} {
		if strings.Contains(out, bad) {
			t.Errorf("log holds %q:\n%s", bad, out)
		}
	}
}

func TestHTTP2(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := start(t, nil, func(o *fakeccp.Options) { o.HTTP2 = h2 })
		cfg := dev(t).ClientTLSConfig()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		resp, err := (&http.Client{Transport: tr}).Get(srv.AccountsURL() + sapQuery)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := 1
		if h2 {
			want = 2
		}
		if resp.ProtoMajor != want || resp.StatusCode != 200 {
			t.Errorf("HTTP2=%v: %s %d", h2, resp.Proto, resp.StatusCode)
		}
	}
}
