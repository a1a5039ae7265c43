package localapi

import (
	"encoding/json"
	"testing"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// FuzzAppendCredential: the hand-written encoding is byte for byte
// encoding/json's, so that clients read the same answer as before.
func FuzzAppendCredential(f *testing.F) {
	for _, s := range [][2]string{
		{"svc_sap", "db1.example.com"},
		{`a"b\c`, "<&>"},
		{"ü\u2028", "\x00\x7f\xff"},
		{"", ""},
	} {
		f.Add(s[0], "Address", s[1], "PolicyID", "UnixSSH", true, false, int64(1500), true, s[0])
	}
	f.Fuzz(func(t *testing.T, user, k1, v1, k2, v2 string, fromCache, stale bool, age int64, changing bool, name string) {
		props := map[string]string{}
		if k1 != "" {
			props[k1] = v1
		}
		if k2 != "" {
			props[k2] = v2
		}
		c := apitype.Credential{Username: user, Properties: props, FromCache: fromCache, Stale: stale, CacheAgeMS: age, PasswordChangeInProcess: changing}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCredential(nil, c); string(got) != string(want) {
			t.Fatalf("appendCredential:\n got %s\nwant %s", got, want)
		}
		wantName, _ := json.Marshal(name)
		if got := apitype.AppendString([]byte("x"), name); string(got) != "x"+string(wantName) {
			t.Fatalf("AppendString(%q) = %s, want x%s", name, got, wantName)
		}
	})
}

func TestAppendCredentialManyProperties(t *testing.T) {
	props := map[string]string{}
	for _, k := range []string{"q", "w", "e", "r", "t", "y", "u", "i", "o", "p", "a", "s", "d", "f", "g", "h", "j", "k", "l", "z"} {
		props[k] = k + k
	}
	c := apitype.Credential{Username: "u", Properties: props}
	want, _ := json.Marshal(c)
	if got := appendCredential(nil, c); string(got) != string(want) {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}
