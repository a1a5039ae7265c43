package resolve

import (
	"bytes"
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
