package ccp

import (
	"net/url"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		wantErr string // substring; "" means valid
	}{
		{"object", Request{AppID: "App", Safe: "S", Object: "O"}, ""},
		{"spaces and backslashes", Request{AppID: "App", Safe: "My Safe", Folder: `Root\OS\Windows`, Object: "sap prod (EU)", Reason: "run 42"}, ""},
		{"query", Request{AppID: "App", Query: "Safe=S;Object=O", QueryFormat: "Regexp"}, ""},
		{"query trailing semicolon", Request{AppID: "App", Query: "Safe=S;Object=O;"}, ""},
		{"query value with =", Request{AppID: "App", Query: "Safe=S;Address=a=b"}, ""},
		{"no appid", Request{Safe: "S", Object: "O"}, "AppID is required"},
		{"appid only", Request{AppID: "App"}, "needs Safe"},
		{"plus", Request{AppID: "App", Object: "a+b"}, `Object contains '+'`},
		{"ampersand", Request{AppID: "App", Safe: "a&b", Object: "o"}, `Safe contains '&'`},
		{"percent", Request{AppID: "App", Object: "100%"}, `Object contains '%'`},
		{"semicolon in object", Request{AppID: "App", Object: "a;Safe=x"}, `Object contains ';'`},
		{"semicolon in reason", Request{AppID: "App", Object: "o", Reason: "a;b"}, `Reason contains ';'`},
		{"plus in appid", Request{AppID: "A+", Object: "o"}, `AppID contains '+'`},
		{"query pair without =", Request{AppID: "App", Query: "Safe=S;Object"}, "pair 2 has no '='"},
		{"query empty key", Request{AppID: "App", Query: "=S"}, "pair 1 has an empty key"},
		{"query empty pair", Request{AppID: "App", Query: "Safe=S;;Object=O"}, "pair 2 has no '='"},
		{"query percent", Request{AppID: "App", Query: "Safe=S;Object=5%"}, `Query value 2 contains '%'`},
		{"bad query format", Request{AppID: "App", Query: "Safe=S", QueryFormat: "Glob"}, "QueryFormat"},
		{"format without query", Request{AppID: "App", Object: "o", QueryFormat: "Exact"}, "without a Query"},
		{"newline", Request{AppID: "App", Object: "o\nx"}, "control character"},
		{"negative timeout", Request{AppID: "App", Object: "o", ConnectionTimeout: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate = %v, want %q", err, tt.wantErr)
			}
			if apitype.ClassOf(err) != apitype.ClassInvalidRequest {
				t.Fatalf("class %q", apitype.ClassOf(err))
			}
		})
	}
}

// TestRequestEncode checks that what is sent decodes, by any form decoder
// (which is what IIS and the fake do), to exactly the values given.
func TestRequestEncode(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want url.Values
	}{
		{
			"object",
			Request{AppID: "App 1", Safe: "My Safe", Folder: `Root\OS\Windows`, Object: "sap prod", Reason: "run 42", ConnectionTimeout: 15, FailRequestOnPasswordChange: true},
			url.Values{"AppID": {"App 1"}, "Safe": {"My Safe"}, "Folder": {`Root\OS\Windows`}, "Object": {"sap prod"}, "Reason": {"run 42"}, "ConnectionTimeout": {"15"}, "FailRequestOnPasswordChange": {"true"}},
		},
		{
			"query drops safe",
			Request{AppID: "App", Safe: "ignored", Query: `Safe=S;Folder=Root\X;Object=a b`, QueryFormat: "Exact"},
			url.Values{"AppID": {"App"}, "Query": {`Safe=S;Folder=Root\X;Object=a b`}, "QueryFormat": {"Exact"}},
		},
		{
			"unicode",
			Request{AppID: "App", Object: "Zürich-Konto é"},
			url.Values{"AppID": {"App"}, "Object": {"Zürich-Konto é"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.req.encode()
			if strings.ContainsAny(q, "+ \\;") {
				t.Errorf("encoded query %q holds a raw '+', space, backslash or ';'", q)
			}
			got, err := url.ParseQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Encode() != tt.want.Encode() {
				t.Errorf("decoded %v, want %v", got, tt.want)
			}
		})
	}
}
