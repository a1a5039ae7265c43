package ccp

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

const iis404 = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"><html><head><title>404 - File or directory not found.</title></head><body><h2>404 - File or directory not found.</h2></body></html>`

func iis403(sub string) string {
	return `<html><head><title>IIS 10.0 Detailed Error - 403.` + sub + ` - Forbidden</title></head><body><h3>HTTP Error 403.` + sub + ` - Forbidden</h3></body></html>`
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		ctype       string
		body        string
		class       apitype.Class // "" means success
		code        string        // error code, or expected Content on success
		pcip        bool
		wantMessage string
	}{
		{"all strings", 200, "application/json", account("pw", ""), "", "pw", false, ""},
		{"real booleans and numbers", 200, "application/json", `{"Content":"pw","PasswordChangeInProcess":true,"SequenceID":3,"X":null,"N":{"a": [1, 2]}}`, "", "pw", true, ""},
		{"string true lower", 200, "application/json", `{"Content":"pw","PasswordChangeInProcess":"true"}`, "", "pw", true, ""},
		{"escapes", 200, "application/json", `{"Content":"a\"b\\c\/d\u00e9\ud83d\ude00\n"}`, "", "a\"b\\c/dé😀\n", false, ""},
		{"json without content type", 200, "text/plain", `  {"Content":"pw"}`, "", "pw", false, ""},
		{"bom", 200, "application/json", "\xef\xbb\xbf{\"Content\":\"pw\"}", "", "pw", false, ""},
		{"not found", 404, "application/json", `{"ErrorCode":"APPAP004E","ErrorMsg":"Password object matching query [Safe=s;Folder=Root;Object=o] was not found (Diagnostic Info: 5)."}`, apitype.ClassNotFound, "APPAP004E", false, "matching query [criteria withheld] was not found (Diagnostic Info: 5)."},
		{"unknown appid", 403, "application/json", `{"ErrorCode":"APPAP008E","ErrorMsg":"Problem occurred while trying to use user in the Vault (Error: ITATS982E User X is not defined.  Diagnostic Info: 6)"}`, apitype.ClassStoreMisconfigured, "APPAP008E", false, "ITATS982E"},
		{"appid missing", 400, "application/json", `{"ErrorCode":"AIMWS031E","ErrorMsg":"Invalid request. The AppID parameter is required."}`, apitype.ClassStoreMisconfigured, "AIMWS031E", false, ""},
		{"cert unauthorized", 403, "application/json", `{"ErrorCode":"APPAP306E","ErrorMsg":"Authentication error for App ID [A]. Reason: APPAP133E ..."}`, apitype.ClassClientCertRejected, "APPAP306E", false, ""},
		{"no cert details", 403, "application/json", `{"ErrorCode":"APPAP330E","ErrorMsg":"Could not obtain client certificate details"}`, apitype.ClassClientCertRejected, "APPAP330E", false, ""},
		{"too many", 400, "application/json", `{"ErrorCode":"APPAP227E","ErrorMsg":"Too many password objects matching query [Safe=s;Folder=f] were found: (Safe=s;Folder=f;Object=o1 and Safe=s;Folder=f;Object=o2) (Diagnostic Info: 41)"}`, apitype.ClassTooManyObjects, "APPAP227E", false, "matching query [criteria withheld] were found: (criteria withheld) (Diagnostic Info: 41)"},
		{"bare pair withheld", 400, "application/json", `{"ErrorCode":"AIMWS030E","ErrorMsg":"bad Query=Safe=x;Object=y here"}`, apitype.ClassInvalidRequest, "AIMWS030E", false, "bad Query=...;Object=... here"},
		{"too many 229", 400, "application/json", `{"ErrorCode":"APPAP229E","ErrorMsg":"x"}`, apitype.ClassTooManyObjects, "APPAP229E", false, ""},
		{"changing", 500, "application/json", `{"ErrorCode":"APPAP282E","ErrorMsg":"Password [o] is currently being changed by the CPM."}`, apitype.ClassPasswordChanging, "APPAP282E", false, ""},
		{"vault down", 400, "application/json", `{"ErrorCode":"APPAP007E","ErrorMsg":"Connection to the Vault has failed"}`, apitype.ClassVaultUnreachable, "APPAP007E", false, ""},
		{"bad query", 400, "application/json", `{"ErrorCode":"AIMWS030E","ErrorMsg":"Invalid query format"}`, apitype.ClassInvalidRequest, "AIMWS030E", false, ""},
		{"pvwa spelling", 404, "application/json", `{"ErrorCode":"APPAP004E","ErrorMessage":"nope"}`, apitype.ClassNotFound, "APPAP004E", false, "nope"},
		{"unknown 5xx code", 500, "application/json", `{"ErrorCode":"XYZ123E","ErrorMsg":"boom"}`, apitype.ClassServerError, "XYZ123E", false, ""},
		{"error code on 200", 200, "application/json", `{"ErrorCode":"APPAP004E","ErrorMsg":"x"}`, apitype.ClassNotFound, "APPAP004E", false, ""},
		{"iis 404", 404, "text/html", iis404, apitype.ClassStoreMisconfigured, "HTTP 404, HTML page", false, "web-service path"},
		{"iis 404 no content type", 404, "", iis404, apitype.ClassStoreMisconfigured, "HTTP 404, HTML page", false, ""},
		{"iis 403.7", 403, "text/html", iis403("7"), apitype.ClassClientCertRejected, "IIS 403.7", false, "requires a client certificate"},
		{"iis 403.16", 403, "text/html", iis403("16"), apitype.ClassClientCertRejected, "IIS 403.16", false, ""},
		{"iis 403.17", 403, "text/html", iis403("17"), apitype.ClassClientCertRejected, "IIS 403.17", false, "expired"},
		{"iis 403.13", 403, "text/html", iis403("13"), apitype.ClassClientCertRejected, "IIS 403.13", false, "revoked"},
		{"iis 401", 401, "text/html", `<html>401.2</html>`, apitype.ClassStoreMisconfigured, "IIS 401.2", false, "Windows authentication"},
		{"iis 500 html", 500, "text/html", `<html>oops</html>`, apitype.ClassServerError, "HTTP 500, HTML page", false, ""},
		{"502 plain", 502, "text/plain", `bad gateway`, apitype.ClassServerError, "HTTP 502", false, ""},
		{"200 html", 200, "text/html", `<html>login</html>`, apitype.ClassServerError, "HTTP 200, HTML page", false, ""},
		{"200 garbage", 200, "application/json", `{"Content":`, apitype.ClassServerError, "", false, "not a JSON object"},
		{"200 array", 200, "application/json", `[1]`, apitype.ClassServerError, "", false, ""},
		// Duplicates, exact or in another case, are ambiguous: refused.
		{"duplicate content", 200, "application/json", `{"Content":"a","Content":"b"}`, apitype.ClassServerError, "", false, "appears twice"},
		{"case-variant content", 200, "application/json", `{"Content":"a","content":"b"}`, apitype.ClassServerError, "", false, `"content" appears twice`},
		{"case-variant error code", 404, "application/json", `{"ErrorCode":"APPAP004E","errorcode":"APPAP306E"}`, apitype.ClassServerError, "", false, "appears twice"},
		// Keys the client looks up are matched ignoring case.
		{"lower-case content", 200, "application/json", `{"content":"pw"}`, "", "pw", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, e := decodeResponse(tt.status, tt.ctype, []byte(tt.body))
			if tt.class == "" {
				if e != nil {
					t.Fatalf("error %v", e)
				}
				if got := a.Content.RevealString(); got != tt.code {
					t.Errorf("Content = %q, want %q", got, tt.code)
				}
				if _, ok := a.Properties["Content"]; ok {
					t.Error("Content is in Properties")
				}
				if a.PasswordChangeInProcess != tt.pcip {
					t.Errorf("PasswordChangeInProcess = %v", a.PasswordChangeInProcess)
				}
				return
			}
			if e == nil {
				t.Fatalf("no error; account %+v", a)
			}
			if e.Class != tt.class || e.Code != tt.code || e.HTTPStatus != tt.status {
				t.Errorf("got class %q code %q status %d; want %q %q %d", e.Class, e.Code, e.HTTPStatus, tt.class, tt.code, tt.status)
			}
			if !strings.Contains(e.Message, tt.wantMessage) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMessage)
			}
		})
	}
}

func TestDecodeKeepsProperties(t *testing.T) {
	a, e := decodeResponse(200, "application/json", []byte(account("pw", `,"LogonDomain":"CORP","CustomCategory":"x y"`)))
	if e != nil {
		t.Fatal(e)
	}
	want := map[string]string{"UserName": "svc_sap", "Address": "sap.corp", "Safe": "partner", "Folder": "Root", "Name": "sap-prod",
		"PolicyID": "WinDomain", "PasswordChangeInProcess": "False", "SequenceID": "1", "LogonDomain": "CORP", "CustomCategory": "x y"}
	if len(a.Properties) != len(want) {
		t.Errorf("properties %v", a.Properties)
	}
	for k, v := range want {
		if a.Properties[k] != v {
			t.Errorf("%s = %q, want %q", k, a.Properties[k], v)
		}
	}
	if a.UserName() != "svc_sap" {
		t.Error("UserName")
	}
}

// TestDecodeDoesNotAlias checks that the password does not share memory with
// the body the caller wipes, and that wiping the body leaves it intact.
func TestDecodeDoesNotAlias(t *testing.T) {
	body := []byte(account("plainpw", ""))
	a, e := decodeResponse(200, "application/json", body)
	if e != nil {
		t.Fatal(e)
	}
	clear(body)
	if a.Content.RevealString() != "plainpw" {
		t.Fatal("wiping the body changed the password")
	}
}

func FuzzDecodeResponse(f *testing.F) {
	seeds := []string{
		account("pw", ""), `{"Content":"a\"b\\c\u00e9\ud83d\ude00"}`, `{"Content":"\ud800"}`, `{"Content":true}`,
		`{"ErrorCode":"APPAP004E","ErrorMsg":"x"}`, iis404, iis403("7"), `{"a":{"b":["}",","]},"Content":"x"}`,
		`{"Content":"x","Content":"y"}`, "\xef\xbb\xbf{}", `[]`, `{`, `"x"`, `{"Content":"\u0000"}`,
	}
	for _, s := range seeds {
		f.Add(200, "application/json", []byte(s))
		f.Add(404, "text/html", []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		a, e := decodeResponse(status, ctype, append([]byte(nil), body...))
		if (a == nil) == (e == nil) {
			t.Fatalf("account %v and error %v", a, e)
		}
		if e != nil {
			if e.Class == "" {
				t.Fatal("error without class")
			}
			if !utf8.ValidString(e.Message) && utf8.ValidString(string(body)) {
				t.Fatalf("invalid UTF-8 message from valid body")
			}
			return
		}
		if status != 200 {
			t.Fatalf("success on status %d", status)
		}
		// Whatever decodes must agree with encoding/json on the password
		// and on every string property.
		var m map[string]any
		if err := json.Unmarshal(bytes.TrimPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("\xef\xbb\xbf")), &m); err != nil {
			t.Fatalf("decoded a body encoding/json refuses: %v", err)
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if k == "Content" {
				if a.Content.RevealString() != s {
					t.Fatalf("Content %q, encoding/json says %q", a.Content.RevealString(), s)
				}
			} else if a.Properties[k] != s {
				t.Fatalf("%s = %q, encoding/json says %q", k, a.Properties[k], s)
			}
		}
	})
}

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, lit := range []string{`""`, `"a"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`, "\"\xff\"", `"\/\b\f\n\r\t"`} {
		got, ok := unquote([]byte(lit))
		var want string
		err := json.Unmarshal([]byte(lit), &want)
		if ok != (err == nil) || (ok && string(got) != want) {
			t.Errorf("unquote(%s) = %q, %v; encoding/json %q, %v", lit, got, ok, want, err)
		}
	}
}
