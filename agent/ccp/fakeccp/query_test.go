package fakeccp

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseQueryEcho(t *testing.T) {
	tests := []struct{ raw, echo string }{
		{"AppID=A&Safe=S&Object=O", "Safe=S;Folder=Root;Object=O"},
		{"AppID=A&Object=O&Folder=Root%5CX&Safe=S", `Safe=S;Folder=Root\X;Object=O`},
		{"AppID=A&Safe=S;Folder=F;Object=O", "Safe=S;Folder=F;Object=O"},
		{"AppID=A&Safe=S;Object=O", "Safe=S;Folder=Root;Object=O"},
		{"AppID=A&UserName=u", "Folder=Root;UserName=u"},
		{"AppID=A&Query=Object=O;safe=S", "Object=O;safe=S"},
		{"AppID=A&Reason=r", "Folder=Root"},
		{"AppID=A&AppID=B&safe=S&SAFE=T", "Safe=S;Folder=Root"},
	}
	for _, tt := range tests {
		r, err := ParseQuery(tt.raw, false)
		if err != nil {
			t.Errorf("%s: %v", tt.raw, err)
			continue
		}
		if r.Query != tt.echo {
			t.Errorf("%s: echo %q, want %q", tt.raw, r.Query, tt.echo)
		}
	}
}

// FuzzParseQuery: no query string crashes the parser; what parses has an
// AppID, criteria free of forbidden characters, and an echo made of them.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin",
		"appid=a&query=Safe%3DX%3BObject%3DY&queryformat=regexp",
		"AppID=a&Safe=S;Folder=F;Object=O&FailRequestOnPasswordChange=TRUE",
		"AppID=a&Object=a+b%20c&ConnectionTimeout=30&Reason=%zz",
		"AppID=a&Query=;;=;a=&Folder=",
		"=&&=&AppID",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, qfd bool) {
		r, err := ParseQuery(raw, qfd)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Status < 400 || re.Code == "" || !utf8.ValidString(string((&ccpError{re.Status, re.Code, re.Msg}).body())) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if r.AppID == "" {
			t.Fatal("parsed without an AppID")
		}
		var parts []string
		for _, c := range r.Criteria {
			if c.Key == "" || strings.ContainsAny(c.Value, "+&%") {
				t.Fatalf("criterion %+v", c)
			}
			parts = append(parts, c.Key+"="+c.Value)
		}
		if r.Query != strings.Join(parts, ";") {
			t.Fatalf("echo %q from %v", r.Query, parts)
		}
	})
}
