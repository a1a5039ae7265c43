package secret

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestUnquoteJSON(t *testing.T) {
	tests := []struct {
		lit  string
		want string
		ok   bool
	}{
		{`""`, "", true},
		{`"Sap-Pr0d!pass"`, "Sap-Pr0d!pass", true},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t", true},
		{`"\u00e9\u20AC"`, "é€", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"\ud83d"`, "\uFFFD", true},
		{"\"\xff\"", "\uFFFD", true},
		{`"abc`, "", false},
		{`"a\x"`, "", false},
		{`"a\u12"`, "", false},
		{"\"a\nb\"", "", false},
		{`"a"b"`, "", false},
		{`x`, "", false},
	}
	for _, tt := range tests {
		got, err := UnquoteJSON([]byte(tt.lit))
		if (err == nil) != tt.ok || string(got) != tt.want {
			t.Errorf("UnquoteJSON(%q) = %q, %v; want %q, ok %v", tt.lit, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzUnquoteJSON: UnquoteJSON agrees with encoding/json on every string
// literal that encoding/json accepts.
func FuzzUnquoteJSON(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9"`, `"\ud83d\ude00"`, "\"\xff\"", `"\\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		got, err := UnquoteJSON(lit)
		var want string
		jerr := json.Unmarshal(lit, &want)
		// encoding/json also takes white space around the literal;
		// UnquoteJSON takes the literal alone.
		if jerr != nil || len(lit) == 0 || !bytes.Equal(bytes.TrimSpace(lit), lit) {
			return
		}
		if err != nil {
			t.Fatalf("UnquoteJSON(%q) failed (%v) where encoding/json gives %q", lit, err, want)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Fatalf("UnquoteJSON(%q) = %q, encoding/json %q", lit, got, want)
		}
	})
}
