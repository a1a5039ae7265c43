package fakeccp_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

const notFoundTail = " was not found (Diagnostic Info: 5). Please check that there is a password object that answers your query in the Vault and that both the Provider and the application user have the appropriate permissions needed in order to use the password."

// TestAccountsAPI covers ccp-api.md sections 1 to 3 against the dev
// fixture over mTLS, one row per documented or observed behaviour.
func TestAccountsAPI(t *testing.T) {
	srv := start(t, nil, nil)
	c := appClient(t)
	type want struct {
		status  int
		code    string // ErrorCode, or "" for success
		msg     string // exact ErrorMsg when set
		object  string // Name on success
		content string // Content on success, when set
		fields  map[string]string
	}
	tests := []struct {
		name  string
		query string
		want  want
	}{
		// Section 1: the request.
		{"basic", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin", content: "Sap-Pr0d!pass"}},
		{"names in lower case", "appid=DemoApp&safe=RPA-Prod&object=sap-prod-admin&reason=run+42",
			want{status: 200, object: "sap-prod-admin"}},
		{"names in mixed case", "AppId=DemoApp&SAFE=RPA-Prod&OBJECT=sap-prod-admin&Reason=run",
			want{status: 200, object: "sap-prod-admin"}},
		{"order does not matter", "Object=sap-prod-admin&Safe=RPA-Prod&AppID=DemoApp",
			want{status: 200, object: "sap-prod-admin"}},
		{"space as +", "AppID=DemoApp&Safe=RPA-Prod&Object=Operating+System-WinDomain-example.internal-rpa01",
			want{status: 200, object: "Operating System-WinDomain-example.internal-rpa01", fields: map[string]string{"UserName": "rpa01"}}},
		{"space as %20", "AppID=DemoApp&Safe=RPA-Prod&Object=Operating%20System-WinDomain-example.internal-rpa01",
			want{status: 200, object: "Operating System-WinDomain-example.internal-rpa01"}},
		{"Go url.Values encoding", url.Values{"AppID": {"DemoApp"}, "Safe": {"RPA-Prod"}, "Object": {"Operating System-WinDomain-example.internal-rpa01"}, "Reason": {"a reason with spaces"}}.Encode(),
			want{status: 200, object: "Operating System-WinDomain-example.internal-rpa01"}},
		{"Folder defaults to Root", "AppID=DemoApp&Safe=RPA-Prod&Object=legacy-db",
			want{status: 404, code: "APPAP004E", msg: "Password object matching query [Safe=RPA-Prod;Folder=Root;Object=legacy-db]" + notFoundTail}},
		{"sub-folder with backslash", `AppID=DemoApp&Safe=RPA-Prod&Folder=Root\Legacy&Object=legacy-db`,
			want{status: 200, object: "legacy-db", fields: map[string]string{"Database": "ORCL", "Folder": `Root\Legacy`}}},
		{"sub-folder percent-encoded", "AppID=DemoApp&Safe=RPA-Prod&Folder=Root%5CLegacy&Object=legacy-db",
			want{status: 200, object: "legacy-db"}},
		{"search by UserName", "AppID=DemoApp&Safe=RPA-Prod&UserName=svc_sap",
			want{status: 200, object: "sap-prod-admin"}},
		{"search by Address", "AppID=DemoApp&Safe=RPA-Prod&Address=sap.example.internal",
			want{status: 200, object: "sap-prod-admin"}},
		{"search by Database", `AppID=DemoApp&Folder=Root\Legacy&Database=ORCL`,
			want{status: 200, object: "legacy-db"}},
		{"PolicyID filters", "AppID=DemoApp&Safe=RPA-Prod&UserName=svc_sap&PolicyID=WinDomain",
			want{status: 200, object: "sap-prod-admin"}},
		{"PolicyID mismatch", "AppID=DemoApp&Safe=RPA-Prod&UserName=svc_sap&PolicyID=UnixSSH",
			want{status: 404, code: "APPAP004E", msg: "Password object matching query [Safe=RPA-Prod;Folder=Root;UserName=svc_sap;PolicyID=UnixSSH]" + notFoundTail}},
		{"Safe defaults to the readable safes", "AppID=DemoApp&Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},
		{"ConnectionTimeout accepted", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin&ConnectionTimeout=30",
			want{status: 200, object: "sap-prod-admin"}},
		{"unknown parameters ignored", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin&Foo=bar&x",
			want{status: 200, object: "sap-prod-admin"}},
		{"Query raw", "AppID=DemoApp&Query=Safe=RPA-Prod;Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},
		{"Query percent-encoded", "AppID=DemoApp&Query=" + url.QueryEscape("Safe=RPA-Prod;Object=sap-prod-admin"),
			want{status: 200, object: "sap-prod-admin"}},
		{"Query overrides the other criteria", "AppID=DemoApp&Safe=HR-Restricted&Object=nosuch&Query=Safe=RPA-Prod;Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},
		{"Query keys in any case", "AppID=DemoApp&Query=safe=RPA-Prod;OBJECT=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},
		{"Query on any property", "AppID=DemoApp&Query=Safe=RPA-Prod;LogonDomain=EXAMPLE;UserName=svc_sap",
			want{status: 200, object: "sap-prod-admin"}},
		{"Query without Folder searches every folder", "AppID=DemoApp&Query=Safe=RPA-Prod;Database=ORCL",
			want{status: 200, object: "legacy-db"}},
		{"QueryFormat Regexp", "AppID=DemoApp&Query=Safe=RPA-Prod;Object=sap-prod-.*&QueryFormat=Regexp",
			want{status: 200, object: "sap-prod-admin"}},
		{"QueryFormat regexp lower case", "AppID=DemoApp&Query=Safe=RPA-Prod;Object=sap-prod-.*&QueryFormat=regexp",
			want{status: 200, object: "sap-prod-admin"}},
		{"QueryFormat RegEx", "AppID=DemoApp&Query=Safe=RPA-Prod;Object=sap-prod-.*&QueryFormat=RegEx",
			want{status: 200, object: "sap-prod-admin"}},
		{"Regexp partial pattern matches", "AppID=DemoApp&Query=Safe=RPA;Object=sap-prod&QueryFormat=Regexp",
			want{status: 200, object: "sap-prod-admin"}},
		{"Exact does not match partially", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod&QueryFormat=Exact",
			want{status: 404, code: "APPAP004E"}},
		{"QueryFormat exact lower case", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin&QueryFormat=exact",
			want{status: 200, object: "sap-prod-admin"}},
		{"criteria smuggled in Safe", "AppID=DemoApp&Safe=RPA-Prod;Folder=Root;Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},
		{"smuggled sub-folder", `AppID=DemoApp&Safe=RPA-Prod;Folder=Root\Legacy;Object=legacy-db`,
			want{status: 200, object: "legacy-db"}},
		{"Object matched exactly (case)", "AppID=DemoApp&Safe=RPA-Prod&Object=SAP-PROD-ADMIN",
			want{status: 404, code: "APPAP004E"}},
		{"Safe matched case-insensitively", "AppID=DemoApp&Safe=rpa-prod&Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},
		{"AppID matched case-insensitively", "AppID=demoapp&Safe=RPA-Prod&Object=sap-prod-admin",
			want{status: 200, object: "sap-prod-admin"}},

		// Section 2: password change in progress.
		{"change in progress, default", "AppID=DemoApp&Safe=RPA-Prod&Object=rotating-admin",
			want{status: 200, object: "rotating-admin", fields: map[string]string{"PasswordChangeInProcess": "True"}}},
		{"change in progress, false", "AppID=DemoApp&Safe=RPA-Prod&Object=rotating-admin&FailRequestOnPasswordChange=false",
			want{status: 200, object: "rotating-admin"}},
		{"change in progress, FALSE", "AppID=DemoApp&Safe=RPA-Prod&Object=rotating-admin&FailRequestOnPasswordChange=FALSE",
			want{status: 200, object: "rotating-admin"}},
		{"change in progress, True", "AppID=DemoApp&Safe=RPA-Prod&Object=rotating-admin&FailRequestOnPasswordChange=True",
			want{status: 500, code: "APPAP282E", msg: "Password [rotating-admin] is currently being changed by the CPM."}},
		{"change in progress, true lower name", "AppID=DemoApp&Safe=RPA-Prod&Object=rotating-admin&failrequestonpasswordchange=true",
			want{status: 500, code: "APPAP282E"}},
		{"no change, fail flag harmless", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin&FailRequestOnPasswordChange=true",
			want{status: 200, object: "sap-prod-admin", fields: map[string]string{"PasswordChangeInProcess": "False"}}},

		// Section 3: errors.
		{"AppID required", "Safe=RPA-Prod&Object=sap-prod-admin",
			want{status: 400, code: "AIMWS031E", msg: "Invalid request. The AppID parameter is required."}},
		{"empty AppID", "AppID=&Safe=RPA-Prod&Object=sap-prod-admin",
			want{status: 400, code: "AIMWS031E"}},
		{"no query at all", "",
			want{status: 400, code: "AIMWS031E"}},
		{"AppID alone", "AppID=DemoApp",
			want{status: 400, code: "APPAP081E"}},
		{"+ in a value", "AppID=DemoApp&Safe=RPA-Prod&Object=a%2Bb",
			want{status: 400, code: "APPAP081E"}},
		{"& in a value", "AppID=DemoApp&Safe=RPA-Prod&Object=a%26b",
			want{status: 400, code: "APPAP081E"}},
		{"% in a value", "AppID=DemoApp&Safe=RPA-Prod&Object=a%25b",
			want{status: 400, code: "APPAP081E"}},
		{"+ in UserName", "AppID=DemoApp&Safe=RPA-Prod&UserName=a%2Bb",
			want{status: 400, code: "CASVL010E"}},
		{"invalid escape", "AppID=DemoApp&Safe=RPA-Prod&Object=%zz",
			want{status: 400, code: "AIMWS030E"}},
		{"QueryFormat unknown", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin&QueryFormat=Fuzzy",
			want{status: 400, code: "AIMWS030E"}},
		{"Query not Key=Value", "AppID=DemoApp&Query=garbage",
			want{status: 400, code: "AIMWS030E"}},
		{"invalid regexp", "AppID=DemoApp&Query=Safe=RPA-Prod;Object=(&QueryFormat=Regexp",
			want{status: 400, code: "AIMWS030E"}},
		{"boolean not a boolean", "AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin&FailRequestOnPasswordChange=maybe",
			want{status: 400, code: "AIMWS030E"}},
		{"too many objects", "AppID=DemoApp&Safe=RPA-Prod&UserName=shared_user",
			want{status: 400, code: "APPAP227E", msg: "Too many password objects matching query [Safe=RPA-Prod;Folder=Root;UserName=shared_user] were found: (Safe=RPA-Prod;Folder=Root;Object=dup-a and Safe=RPA-Prod;Folder=Root;Object=dup-b) (Diagnostic Info: 41)"}},
		{"too many objects by Regexp", "AppID=DemoApp&Query=Safe=RPA-Prod;Object=dup-&QueryFormat=Regexp",
			want{status: 400, code: "APPAP227E"}},
		{"not found", "AppID=DemoApp&Safe=RPA-Prod&Object=nosuch",
			want{status: 404, code: "APPAP004E", msg: "Password object matching query [Safe=RPA-Prod;Folder=Root;Object=nosuch]" + notFoundTail}},
		{"safe not readable: the same 404", "AppID=DemoApp&Safe=HR-Restricted&Object=hr-admin",
			want{status: 404, code: "APPAP004E", msg: "Password object matching query [Safe=HR-Restricted;Folder=Root;Object=hr-admin]" + notFoundTail}},
		{"unreadable safe not searched by default", "AppID=DemoApp&Object=hr-admin",
			want{status: 404, code: "APPAP004E", msg: "Password object matching query [Folder=Root;Object=hr-admin]" + notFoundTail}},
		{"AppID not defined", "AppID=NoSuchApp&Safe=RPA-Prod&Object=sap-prod-admin",
			want{status: 403, code: "APPAP008E", msg: "Problem occurred while trying to use user in the Vault (Error: ITATS982E User NoSuchApp is not defined.  Diagnostic Info: 6)"}},

		// Section 4: allowed machines.
		{"allowed machine not loopback", "AppID=IPApp&Safe=RPA-Prod&Object=sap-prod-admin",
			want{status: 403, code: "APPAP306E", msg: "Authentication error for App ID [IPApp]. Reason: APPAP133E Failed to verify application authentication data: Address [127.0.0.1] is unauthorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, c, srv.AccountsURL()+"?"+tt.query)
			if a.status != tt.want.status {
				t.Fatalf("status %d, want %d; body %s", a.status, tt.want.status, a.raw)
			}
			if a.ctype != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", a.ctype)
			}
			for k, v := range a.fields {
				if _, ok := v.(string); !ok {
					t.Errorf("%s is %T, want a JSON string", k, v)
				}
			}
			if tt.want.code != "" {
				if got := a.str("ErrorCode"); got != tt.want.code {
					t.Errorf("ErrorCode %q, want %q", got, tt.want.code)
				}
				if tt.want.msg != "" && a.str("ErrorMsg") != tt.want.msg {
					t.Errorf("ErrorMsg\n got %q\nwant %q", a.str("ErrorMsg"), tt.want.msg)
				}
				if len(a.fields) != 2 {
					t.Errorf("error body has %d keys: %s", len(a.fields), a.raw)
				}
				return
			}
			if got := a.str("Name"); got != tt.want.object {
				t.Errorf("Name %q, want %q", got, tt.want.object)
			}
			if tt.want.content != "" && a.str("Content") != tt.want.content {
				t.Errorf("Content %q, want %q", a.str("Content"), tt.want.content)
			}
			for k, v := range tt.want.fields {
				if a.str(k) != v {
					t.Errorf("%s %q, want %q", k, a.str(k), v)
				}
			}
		})
	}
}

// TestSuccessBody checks section 2: exactly the defined properties, all
// strings, the right Content-Type.
func TestSuccessBody(t *testing.T) {
	srv := start(t, nil, nil)
	a := get(t, appClient(t), srv.AccountsURL()+"?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin")
	want := map[string]string{
		"Content": "Sap-Pr0d!pass", "UserName": "svc_sap", "Address": "sap.example.internal",
		"PolicyID": "WinDomain", "LogonDomain": "EXAMPLE", "DeviceType": "Operating System",
		"CreationMethod": "PVWA", "Safe": "RPA-Prod", "Folder": "Root", "Name": "sap-prod-admin",
		"PasswordChangeInProcess": "False",
	}
	if a.status != 200 || !strings.HasPrefix(a.ctype, "application/json") {
		t.Fatalf("status %d, Content-Type %q", a.status, a.ctype)
	}
	if len(a.fields) != len(want) {
		t.Errorf("got keys %v, want %d keys", keys(a.fields), len(want))
	}
	for k, v := range want {
		if a.str(k) != v {
			t.Errorf("%s = %v, want %q", k, a.fields[k], v)
		}
	}
	// An account with fewer properties returns fewer keys.
	b := get(t, appClient(t), srv.AccountsURL()+"?AppID=DemoApp&Safe=RPA-Prod&Object=dup-a")
	if _, ok := b.fields["Address"]; ok {
		t.Errorf("dup-a has no Address, got %s", b.raw)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestIISPages covers the wrong path, the path's case, and the limits.
func TestIISPages(t *testing.T) {
	srv := start(t, nil, nil)
	c := appClient(t)
	q := "?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin"
	tests := []struct {
		name   string
		url    string
		status int
		html   string
	}{
		{"wrong application path", srv.URL + "/AIMWebServiceX/api/Accounts" + q, 404, "HTTP Error 404.0 - Not Found"},
		{"wrong api path", srv.URL + "/AIMWebService/api/Account" + q, 404, "404.0"},
		{"root", srv.URL + "/", 404, "404.0"},
		{"path in another case", srv.URL + "/aimwebservice/API/accounts" + q, 200, ""},
		{"trailing slash", srv.URL + "/AIMWebService/api/Accounts/" + q, 200, ""},
		{"URL too long", srv.AccountsURL() + q + "&Reason=" + strings.Repeat("x", 5000), 414, "414"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, c, tt.url)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.raw)
			}
			if tt.html != "" {
				if a.ctype != "text/html" || !strings.Contains(a.raw, tt.html) || !strings.Contains(a.raw, "<html") {
					t.Errorf("want an IIS HTML page with %q, got %q: %s", tt.html, a.ctype, a.raw)
				}
			}
		})
	}
	t.Run("header too large", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.AccountsURL()+q, nil)
		req.Header.Set("X-Big", strings.Repeat("y", 64<<10))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("POST", func(t *testing.T) {
		resp, err := c.Post(srv.AccountsURL()+q, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", resp.StatusCode)
		}
	})
	t.Run("custom path", func(t *testing.T) {
		srv := start(t, nil, func(o *fakeccp.Options) { o.Path = "/Vault/CCP" })
		if a := get(t, c, srv.URL+"/vault/ccp/api/Accounts"+q); a.status != 200 {
			t.Errorf("custom path: %d %s", a.status, a.raw)
		}
		if a := get(t, c, srv.URL+"/AIMWebService/api/Accounts"+q); a.status != 404 || a.ctype != "text/html" {
			t.Errorf("default path on a renamed service: %d %s", a.status, a.ctype)
		}
	})
}
