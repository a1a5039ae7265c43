package resolve

import (
	"maps"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/ccp"
)

// cacheKey includes the sequence numbers of the credential and store and the
// certificate fingerprint, so that a new delivery never serves an old value.
type cacheKey struct {
	owner, store, cred string
	storeSeq, credSeq  uint64
	appFP              string
}

type cacheEntry struct {
	acct *ccp.Account // the cache's own copy
	at   time.Time
	keep time.Duration // dropped and wiped after this age
}

// cache holds opted-in accounts. Every value handed out is a copy, so the
// caller's Wipe never touches the cache's copy, and vice versa.
type cache struct {
	mu sync.Mutex
	m  map[cacheKey]*cacheEntry
}

func newCache() *cache { return &cache{m: map[cacheKey]*cacheEntry{}} }

func cloneAccount(a *ccp.Account) *ccp.Account {
	c := *a
	c.Content = a.Content.Clone()
	c.Properties = maps.Clone(a.Properties)
	return &c
}

// get returns a copy of k's value if it is at most maxAge old. A value past
// its keep time is wiped and dropped here, so that it does not wait in
// memory for the next put.
func (c *cache) get(k cacheKey, now time.Time, maxAge time.Duration) (*ccp.Account, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		return nil, 0, false
	}
	age := now.Sub(e.at)
	if age > e.keep {
		e.acct.Wipe()
		delete(c.m, k)
		return nil, 0, false
	}
	if age < 0 || age > maxAge {
		return nil, 0, false
	}
	return cloneAccount(e.acct), age, true
}

// put stores a copy of acct, wiping what it replaces and anything expired,
// including values kept under an older delivery's key.
func (c *cache) put(k cacheKey, acct *ccp.Account, now time.Time, keep time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ok, e := range c.m {
		if now.Sub(e.at) > e.keep || (ok.owner == k.owner && ok.store == k.store && ok.cred == k.cred) {
			e.acct.Wipe()
			delete(c.m, ok)
		}
	}
	c.m[k] = &cacheEntry{acct: cloneAccount(acct), at: now, keep: keep}
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		e.acct.Wipe()
		delete(c.m, k)
	}
}
