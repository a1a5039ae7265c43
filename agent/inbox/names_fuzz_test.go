package inbox

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzNames: whatever an inbox file name holds, its printed form is one
// line of printable characters, a reason file written with it has exactly
// its own lines, and its quarantine name is short and plain.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"a", "x\nreason: fake", "\xff\xfe", strings.Repeat("n", 255), `"\`, "\u2028\u0085", "a\x00b", "..", ".hidden"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p := printable(name)
		if strings.IndexFunc(p, func(r rune) bool {
			return !unicode.IsPrint(r) || r == unicode.ReplacementChar && !strings.ContainsRune(name, r)
		}) >= 0 {
			t.Fatalf("printable(%q) = %q", name, p)
		}
		note := "file: " + p + "\nreason: malformed\n"
		if f := parseReason(note); f["file"] != p || f["reason"] != "malformed" || len(f) != 2 {
			t.Fatalf("reason file of %q parses as %q", name, f)
		}
		q := quarantineName(name)
		if len(q) > 64+9 || strings.Trim(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~") != "" {
			t.Fatalf("quarantineName(%q) = %q", name, q)
		}
	})
}
