package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// event is a change of the agent's world repeated through the run. Its
// period and first time are those of the simulated month (speed 1).
type event struct {
	name   string
	every  time.Duration
	first  time.Duration
	action func(ctx context.Context) error
}

// Fault timings.
const (
	replicaDown = 15 * time.Second // how long a stopped replica stays down
	slowFor     = 10 * time.Second // a slow period
	slowLatency = time.Second      // each CCP answer's delay in it
)

// startEvents runs each event on its own schedule until ctx ends.
func (s *soak) startEvents(ctx context.Context, wg *sync.WaitGroup) {
	events := []event{
		{"application certificate rotated by delivery (in turn through the inbox and the feed)", time.Minute, time.Minute, s.rotateCertEvent},
		{"password rotated in the fake", 20 * time.Second, 20 * time.Second, s.rotatePassword},
		{"store re-delivered with another server list", 2 * time.Minute, 2 * time.Minute, s.redeliverStore},
		{"CCP replica stopped and started", 90 * time.Second, 45 * time.Second, s.bounceReplica},
		{"CCP slow period", 3 * time.Minute, 150 * time.Second, s.slowPeriod},
		{"config reloaded", 30 * time.Second, 30 * time.Second, s.reload},
		{"bad config refused at reload", 5 * time.Minute, 150 * time.Second, s.badConfig},
		{"junk delivery dropped", 5 * time.Second, 5 * time.Second, s.dropJunk},
		{"replayed delivery dropped", 30 * time.Second, 25 * time.Second, s.replay},
		{"feed: a credential published and one revoked", time.Minute, 50 * time.Second, s.feedCredentials},
		{"feed fault served", 45 * time.Second, 30 * time.Second, s.feedFault},
	}
	for _, e := range events {
		wg.Go(func() {
			next := s.epoch.Add(s.scaled(e.first))
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				if err := e.action(ctx); err != nil && ctx.Err() == nil {
					s.note(fmt.Sprintf("t=%.0fs %s: %v", s.since(), e.name, err))
					s.count(e.name + " (failed)")
				} else if ctx.Err() == nil {
					s.count(e.name)
				}
				next = next.Add(s.scaled(e.every))
			}
		})
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// rotatePassword sets a new password in the fixture file and on each
// running replica, then checks that the agent serves it within 3 s (the
// agent caches nothing by default). A stale password is a failure.
func (s *soak) rotatePassword(ctx context.Context) error {
	s.ccpMu.Lock()
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	s.password = "Soak-" + n.String() + "!pass"
	s.passwords = append(s.passwords, s.password)
	pw := s.password
	err := s.writeFixture()
	for _, r := range s.replicas {
		if r.proc == nil {
			continue
		}
		if e := s.admin(ctx, r, "POST", "/accounts/password", map[string]string{"safe": safe, "object": sapObject, "password": pw}); e != nil && err == nil {
			err = e
		}
	}
	s.ccpMu.Unlock()
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(3 * time.Second)
	for {
		got, err := s.resolveSap(ctx)
		if err == nil && got == pw {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			class := "stale_password"
			if err != nil {
				class = errClass(err)
			}
			s.addRecord(record{start: start.Sub(s.epoch).Microseconds(), dur: int32(time.Since(start).Microseconds()), kind: 'p', class: class})
			return fmt.Errorf("the agent did not serve the new password within 3 s (%s)", class)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redeliverStore delivers the store with the replicas in the other order.
func (s *soak) redeliverStore(context.Context) error {
	s.mu.Lock()
	s.events["store order"]++
	flip := s.events["store order"]%2 == 1
	s.mu.Unlock()
	a, b := s.replicas[0].url, s.replicas[1].url
	if flip {
		a, b = b, a
	}
	return s.deliverStore([]string{a, b})
}

// bounceReplica stops one replica (each in turn), keeps it down, and
// starts it again on the same ports. The time it is down is a fault
// window.
func (s *soak) bounceReplica(ctx context.Context) error {
	s.mu.Lock()
	s.events["bounce turn"]++
	r := s.replicas[s.events["bounce turn"]%2]
	s.mu.Unlock()
	w := window{From: s.since(), What: r.name + " stopped"}
	s.ccpMu.Lock()
	p := r.proc
	r.proc = nil
	s.ccpMu.Unlock()
	err := p.Stop(5 * time.Second)
	sleep(ctx, s.scaled(replicaDown))
	s.ccpMu.Lock()
	if e := s.startReplica(r); e != nil && err == nil {
		err = e
	}
	s.ccpMu.Unlock()
	w.To = s.since()
	s.mu.Lock()
	s.windows = append(s.windows, w)
	s.mu.Unlock()
	return err
}

// slowPeriod makes both replicas answer slowly for a while.
func (s *soak) slowPeriod(ctx context.Context) error {
	w := window{From: s.since(), What: "CCP slow"}
	var err error
	for _, r := range s.replicas {
		if e := s.setFaults(ctx, r, &fakeccp.Faults{Latency: slowLatency}); e != nil && err == nil {
			err = e
		}
	}
	sleep(ctx, s.scaled(slowFor))
	for _, r := range s.replicas {
		if e := s.setFaults(context.Background(), r, nil); e != nil && err == nil {
			err = e
		}
	}
	w.To = s.since()
	s.mu.Lock()
	s.windows = append(s.windows, w)
	s.mu.Unlock()
	return err
}

// setFaults sets (or with nil clears) a running replica's faults.
func (s *soak) setFaults(ctx context.Context, r *replica, f *fakeccp.Faults) error {
	s.ccpMu.Lock()
	defer s.ccpMu.Unlock()
	if r.proc == nil {
		return nil // stopped: it starts again without faults
	}
	if f == nil {
		return s.admin(ctx, r, "DELETE", "/faults", nil)
	}
	return s.admin(ctx, r, "PUT", "/faults", f)
}

// reload writes the config with a change and sends SIGHUP.
func (s *soak) reload(context.Context) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if err := s.writeConfig(false); err != nil {
		return err
	}
	return s.agent.Signal(syscall.SIGHUP)
}

// badConfig writes a config the agent must refuse, asks for a reload,
// checks that the agent still serves, and puts the good config back.
func (s *soak) badConfig(ctx context.Context) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if err := s.writeConfig(true); err != nil {
		return err
	}
	if err := s.agent.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	sleep(ctx, 500*time.Millisecond)
	_, err := s.resolveSap(ctx)
	if werr := s.writeConfig(false); werr != nil {
		return werr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("after a bad config the agent did not serve: %w", err)
	}
	return nil
}

// dropJunk drops a file of random bytes named like a delivery.
func (s *soak) dropJunk(context.Context) error {
	n, _ := rand.Int(rand.Reader, big.NewInt(512))
	b := make([]byte, 256+n.Int64())
	rand.Read(b)
	s.noteRejected(int64(len(b)))
	_, err := rig.DropFile(s.inboxDir, "junk-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".delivery", b)
	return err
}

// replay drops, in turn, the first store delivery (superseded once the
// store has been re-delivered: it must be refused as a replay) and the
// store's current delivery again (a duplicate of the record in force,
// dropped silently).
func (s *soak) replay(context.Context) error {
	s.mu.Lock()
	s.events["replay turn"]++
	b := s.oldDelivery
	if s.events["replay turn"]%2 == 0 {
		b = s.currentStore
	}
	s.mu.Unlock()
	s.noteRejected(int64(len(b)))
	_, err := rig.DropFile(s.inboxDir, "replay-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".delivery", b)
	return err
}

func (s *soak) noteRejected(n int64) {
	s.mu.Lock()
	s.maxRejected = max(s.maxRejected, n)
	s.mu.Unlock()
}

// direct is the latency baseline: the Go CCP client (agent/ccp, as the
// agent builds it) straight to the replicas, 100 requests a second, in the
// same intervals as the agent's callers.
func (s *soak) direct(ctx context.Context) {
	cert, err := s.directCert()
	if err != nil {
		s.note("direct baseline: " + err.Error())
		return
	}
	c, err := ccp.New(ccp.Options{Servers: []string{s.replicas[0].url, s.replicas[1].url}, CABundle: s.caPEM},
		func() (*tls.Certificate, error) { return cert, nil })
	if err != nil {
		s.note("direct baseline: " + err.Error())
		return
	}
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				acc, err := c.Get(ctx, ccp.Request{AppID: appID, Safe: safe, Folder: "Root", Object: sapObject, Reason: fmt.Sprintf("direct-%d-%d", w, i)})
				if ctx.Err() != nil {
					return
				}
				class := ""
				if err != nil {
					class = "ccp_error"
				} else {
					acc.Wipe()
				}
				s.addRecord(record{start: start.Sub(s.epoch).Microseconds(), dur: int32(time.Since(start).Microseconds()), kind: kindDirect, class: class})
			}
		})
	}
	wg.Wait()
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
