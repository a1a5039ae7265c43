package resolve

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/secret"
)

// A cached password past its keep time is wiped and dropped when it is next
// looked up, not left in memory until some other value is cached.
func TestCacheWipesExpiredOnGet(t *testing.T) {
	c := newCache()
	k := cacheKey{store: "prod", cred: "sap", storeSeq: 1, credSeq: 1, appFP: "fp"}
	t0 := time.Unix(1_700_000_000, 0)
	c.put(k, &ccp.Account{Content: secret.New([]byte("planted-password"))}, t0, time.Minute)
	held := c.m[k].acct.Content.Reveal()

	if _, _, ok := c.get(k, t0.Add(30*time.Second), 10*time.Second); ok {
		t.Fatal("served past maxAge")
	}
	if !bytes.Equal(held, []byte("planted-password")) || c.m[k] == nil {
		t.Fatal("a value within its keep time was dropped")
	}
	if _, _, ok := c.get(k, t0.Add(2*time.Minute), time.Hour); ok {
		t.Fatal("served past its keep time")
	}
	if c.m[k] != nil {
		t.Error("expired entry still in the cache")
	}
	if !bytes.Equal(held, make([]byte, len(held))) {
		t.Errorf("expired password not wiped: %q", held)
	}
}

// FuzzCleanReason: a run ID that SanitizeReason returns as it is, without
// a copy, is one that the character-by-character path leaves unchanged.
func FuzzCleanReason(f *testing.F) {
	for _, s := range []string{"run-42", " run", "run ", "", "ü", "a\tb", strings.Repeat("x", 129), "r:1@h.example_2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if cleanReason(s) && sanitizeReason(s) != s {
			t.Fatalf("%q taken as clean, sanitized to %q", s, sanitizeReason(s))
		}
		if !cleanReason(s) && sanitizeReason(s) == s && s != "" {
			t.Fatalf("%q is left unchanged, but not taken as clean", s)
		}
	})
}
