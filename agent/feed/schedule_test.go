package feed

import (
	"context"
	"testing"
	"time"
)

// TestSetSchedule: a shorter interval given to a running feed cuts the wait
// in progress (an hour here), and the fail-closed delay applies at once.
func TestSetSchedule(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Interval = time.Hour; o.Rand = func() float64 { return 0.5 } })
	e.publish(e.store("prod", "https://ccp1.example.com"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.feed.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("no poll at start", func() bool { return e.server("prod") != "" })
	e.publish(e.store("prod", "https://ccp2.example.com"))
	e.feed.SetSchedule(Schedule{Interval: 50 * time.Millisecond, FailClosedAfter: time.Minute})
	waitFor("the shorter interval did not apply to the wait in progress", func() bool { return e.server("prod") == "https://ccp2.example.com" })
	if got := e.feed.schedule(); got.Interval != 50*time.Millisecond || got.FailClosedAfter != time.Minute {
		t.Errorf("schedule in force %+v", got)
	}
	e.feed.SetSchedule(Schedule{})
	if got := e.feed.schedule(); got.Interval != DefaultInterval || got.FailClosedAfter != 0 {
		t.Errorf("a zero schedule: %+v, want the default interval and no fail-closed", got)
	}
}
