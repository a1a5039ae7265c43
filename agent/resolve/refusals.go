package resolve

import (
	"sort"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// DefaultRefusalWindow is how long the refusals of one caller are summed up
// after the first of them has been recorded in full.
const DefaultRefusalWindow = time.Minute

// maxRefusalCallers bounds the table of callers being summarised; past it,
// further callers share one entry.
const maxRefusalCallers = 4096

// refusals keeps the audit trail of refused requests bounded per caller, so
// that a caller who is refused cannot flush the records of releases out of
// the rotated audit files: the first refused request of a caller in a window
// is recorded in full (one record per name, as every release is), later
// ones in that window are only counted, and one "refusals" record with the
// counts is written when the window ends. Releases and errors of allowed
// requests are never summarised.
type refusals struct {
	window time.Duration
	write  func(*refusalWindow)

	mu sync.Mutex
	m  map[string]*refusalWindow
}

// refusalWindow is one caller's window.
type refusalWindow struct {
	key         string
	caller      *localsock.Identity // the latest caller under this key
	start, last time.Time
	requests    int // refused requests not recorded in full
	names       int
	classes     map[apitype.Class]int
	timer       *time.Timer
}

func newRefusals(window time.Duration, write func(*refusalWindow)) *refusals {
	if window <= 0 {
		window = DefaultRefusalWindow
	}
	return &refusals{window: window, write: write, m: map[string]*refusalWindow{}}
}

// note counts one refused request of caller at now. It reports whether the
// request is to be recorded in full: the first of its caller's window.
func (rf *refusals) note(caller *localsock.Identity, names int, class apitype.Class, now time.Time) bool {
	key := "<unidentified>"
	if caller != nil {
		key = caller.Key()
	}
	rf.mu.Lock()
	defer rf.mu.Unlock()
	w := rf.m[key]
	if w != nil && now.Sub(w.start) >= rf.window {
		// The timer has not fired yet (or is firing): close the window here.
		rf.closeLocked(w)
		w = nil
	}
	if w == nil {
		if len(rf.m) >= maxRefusalCallers {
			key = "<many callers>"
			if w = rf.m[key]; w != nil {
				w.caller = nil
				w.count(names, class, now)
				return false
			}
		}
		rf.m[key] = &refusalWindow{key: key, caller: caller, start: now, last: now, classes: map[apitype.Class]int{}}
		return true
	}
	w.caller = caller
	w.count(names, class, now)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.start.Add(rf.window).Sub(now), func() { rf.expire(w) })
	}
	return false
}

func (w *refusalWindow) count(names int, class apitype.Class, now time.Time) {
	w.requests++
	w.names += names
	w.classes[class]++
	w.last = now
}

func (w *refusalWindow) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// expire closes w when its timer fires, unless note closed it already.
func (rf *refusals) expire(w *refusalWindow) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.m[w.key] == w {
		rf.closeLocked(w)
	}
}

// closeLocked removes w and writes its summary if it counted anything.
func (rf *refusals) closeLocked(w *refusalWindow) {
	delete(rf.m, w.key)
	w.stop()
	if w.requests > 0 {
		rf.write(w)
	}
}

// flush closes every window (at Close).
func (rf *refusals) flush() {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	for _, w := range rf.m {
		rf.closeLocked(w)
	}
}

// writeRefusalSummary writes the "refusals" record of a closed window:
//
//	time (the window's end), event ("refusals"), outcome ("refused"),
//	caller_uid or caller_sid, caller_user, caller_pid, caller_exe (of the
//	latest refused request), refused_requests, refused_names (not recorded
//	one by one), classes (class -> requests), first, last.
func (r *Resolver) writeRefusalSummary(w *refusalWindow) {
	ev := r.audit.WithLevel(zerolog.WarnLevel)
	if ev == nil {
		return
	}
	ev.Time("time", r.now()).Str("event", "refusals").Str("outcome", "refused").Str("caller", w.key)
	if c := w.caller; c != nil {
		if c.SID != "" {
			ev.Str("caller_sid", c.SID)
		} else {
			ev.Uint32("caller_uid", c.UID)
		}
		ev.Str("caller_user", c.Username).Int("caller_pid", c.PID).Str("caller_exe", c.Exe)
	}
	classes := make([]string, 0, len(w.classes))
	for c := range w.classes {
		classes = append(classes, string(c))
	}
	sort.Strings(classes)
	d := zerolog.Dict()
	for _, c := range classes {
		d.Int(c, w.classes[apitype.Class(c)])
	}
	ev.Int("refused_requests", w.requests).Int("refused_names", w.names).Dict("classes", d).
		Time("first", w.start).Time("last", w.last).
		Msg("refusals of one caller, summed up after the first was recorded in full")
}
