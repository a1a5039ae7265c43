package main

import (
	"errors"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// hasApp reports whether the agent's status lists the application.
func (h *harness) hasApp(appID string) (bool, error) {
	st, err := h.api.Status(h.ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(st.Applications, func(a apitype.ApplicationStatus) bool { return a.AppID == appID }), nil
}

// deliveryApply measures how long a sealed application delivery takes from
// its rename into the inbox to its appearance in the agent's status,
// alternating with the time a bare fsnotify watcher on the same filesystem
// takes to see a rename.
func (h *harness) deliveryApply() error {
	p, err := h.newPortal(h.agentDir)
	if err != nil {
		return err
	}
	n := 2 * h.rounds
	type drop struct {
		appID string
		d     *delivery.Delivery
	}
	drops := make([]drop, n)
	for i := range drops {
		id := fmt.Sprintf("BenchApply%02d", i+1)
		d, err := p.make(id, p.app)
		if err != nil {
			return err
		}
		drops[i] = drop{id, d}
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	watchDir := filepath.Join(h.root, "fswatch")
	if err := os.Mkdir(watchDir, 0o700); err != nil {
		return err
	}
	if err := w.Add(watchDir); err != nil {
		return err
	}
	var agent, raw []float64
	for i, dr := range drops {
		// The agent: poll the status every millisecond.
		t0, err := rig.DropFile(p.Inbox, dr.d.ID+".delivery", dr.d.Marshal())
		if err != nil {
			return err
		}
		deadline := t0.Add(5 * time.Second)
		for {
			ok, err := h.hasApp(dr.appID)
			if err != nil {
				return err
			}
			if ok {
				agent = append(agent, rig.MS(time.Since(t0)))
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("delivery %d (%s) not applied within 5s; see %s", i+1, dr.appID, h.agent.LogPath)
			}
			time.Sleep(time.Millisecond)
		}
		// The baseline: a bare watcher seeing the same kind of rename.
		name := fmt.Sprintf("raw%02d.delivery", i)
		t1, err := rig.DropFile(watchDir, name, dr.d.Marshal())
		if err != nil {
			return err
		}
		got, err := waitEvent(w, filepath.Join(watchDir, name), 5*time.Second)
		if err != nil {
			return err
		}
		raw = append(raw, rig.MS(got.Sub(t1)))
	}
	fmt.Printf("   agent ms %v\n   fsnotify ms %v\n", roundAll(agent), roundAll(raw))
	h.rep.add(&figure{Key: "delivery_apply_ms", Unit: "ms", Value: rig.Median(agent), Rounds: agent, Baseline: rig.Median(raw), BaselineRounds: raw,
		BaselineName: "bare fsnotify watcher, same filesystem",
		Method: fmt.Sprintf("%d sealed application deliveries (made with agent/delivery as credseal does), each written to a dot file, flushed, "+
			"and renamed into the running agent's inbox; the time from the rename until GET /v1/status lists the application "+
			"(polled every 1 ms; so verified, opened with the machine key, checked and swapped in). Median of the drops. "+
			"Baseline: the same rename into a directory watched by a bare fsnotify watcher in the harness, until its event.", n),
		goal: &goal{"<", 250}})
	return nil
}

func waitEvent(w *fsnotify.Watcher, path string, timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return time.Time{}, errors.New("fsnotify watcher closed")
			}
			if ev.Name == path && ev.Has(fsnotify.Create) {
				return time.Now(), nil
			}
		case err := <-w.Errors:
			return time.Time{}, err
		case <-t.C:
			return time.Time{}, fmt.Errorf("no fsnotify event for %s within %v", path, timeout)
		}
	}
}

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = rig.Round3(x)
	}
	return out
}
