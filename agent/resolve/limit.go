package resolve

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds the per-caller table; past it, callers whose bucket is
// full (idle) are forgotten, which loses nothing.
const maxLimiters = 4096

type limiter struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	r     rate.Limit
	burst int
}

func newLimiter(perSecond float64, burst int) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{m: map[string]*rate.Limiter{}, r: rate.Limit(perSecond), burst: burst}
}

// allow takes n tokens (one per credential name) from key's bucket. When it
// cannot, it takes none and says how long until it could.
func (l *limiter) allow(key string, n int, now time.Time) (time.Duration, bool) {
	n = min(max(n, 1), l.burst)
	l.mu.Lock()
	lim := l.m[key]
	if lim == nil {
		if len(l.m) >= maxLimiters {
			for k, v := range l.m {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.m, k)
				}
			}
		}
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, n)
	if !res.OK() {
		return time.Second, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}
