package apitype

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func FuzzPasswordRoundTrip(f *testing.F) {
	for _, s := range []string{"", "p@ss", `q"uo\te`, "tab\tnl\n\x00\x7f", "ünï€😀", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, pw []byte) {
		enc, err := AppendPassword(nil, pw)
		if !utf8.Valid(pw) {
			if err == nil {
				t.Fatal("invalid UTF-8 accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) > PasswordLen(pw) {
			t.Fatalf("PasswordLen %d < %d", PasswordLen(pw), len(enc))
		}
		// encoding/json agrees with our encoder ...
		var s string
		if err := json.Unmarshal(enc, &s); err != nil || s != string(pw) {
			t.Fatalf("json reads %q (%v), want %q", s, err, pw)
		}
		// ... and our decoder reads what encoding/json writes.
		std, _ := json.Marshal(string(pw))
		for _, lit := range [][]byte{enc, std} {
			got, err := DecodePassword(lit)
			if err != nil || !bytes.Equal(got, pw) {
				t.Fatalf("DecodePassword(%s) = %q, %v", lit, got, err)
			}
		}
	})
}

func FuzzDecodePassword(f *testing.F) {
	for _, s := range []string{`""`, `"a\u00e9\ud83d\ude00"`, `"\ud800"`, `"\x"`, `"abc`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		got, err := DecodePassword(lit)
		var want string
		stdErr := json.Unmarshal(lit, &want)
		if err != nil {
			return // stricter than encoding/json is fine (e.g. lone surrogates)
		}
		if stdErr != nil {
			t.Fatalf("DecodePassword accepted %q that encoding/json refuses: %v", lit, stdErr)
		}
		if string(got) != want {
			t.Fatalf("DecodePassword(%q) = %q, encoding/json says %q", lit, got, want)
		}
	})
}
