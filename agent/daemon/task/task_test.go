package task

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	errBoom := errors.New("boom")
	// waitDone blocks until ctx is done and returns what ctx says.
	waitDone := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name    string
		tasks   func(stopped *atomic.Int32) []Task
		cancel  bool // cancel the parent once the tasks run
		wantErr error
		stopped int32 // tasks that saw ctx done
	}{
		{
			name: "parent cancelled: all stop, no error",
			tasks: func(s *atomic.Int32) []Task {
				w := func(ctx context.Context) error { err := waitDone(ctx); s.Add(1); return err }
				return []Task{w, w, w}
			},
			cancel:  true,
			stopped: 3,
		},
		{
			name: "first failure cancels the others and is returned",
			tasks: func(s *atomic.Int32) []Task {
				w := func(ctx context.Context) error {
					err := waitDone(ctx)
					s.Add(1)
					return fmt.Errorf("stopping: %w", err)
				}
				return []Task{w, func(context.Context) error { return errBoom }, w}
			},
			wantErr: errBoom,
			stopped: 2,
		},
		{
			name: "a task that ends with nil does not stop the others",
			tasks: func(s *atomic.Int32) []Task {
				w := func(ctx context.Context) error { err := waitDone(ctx); s.Add(1); return err }
				return []Task{func(context.Context) error { return nil }, w, nil}
			},
			cancel:  true,
			stopped: 1,
		},
		{
			name: "only the first of several failures is returned",
			tasks: func(s *atomic.Int32) []Task {
				second := func(ctx context.Context) error { <-ctx.Done(); s.Add(1); return errors.New("second") }
				return []Task{func(context.Context) error { return errBoom }, second}
			},
			wantErr: errBoom,
			stopped: 1,
		},
		{
			name: "Go adapts a function without result",
			tasks: func(s *atomic.Int32) []Task {
				return []Task{Go(func(ctx context.Context) { <-ctx.Done(); s.Add(1) })}
			},
			cancel:  true,
			stopped: 1,
		},
		{
			name:  "no tasks: returns at once",
			tasks: func(*atomic.Int32) []Task { return nil },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stopped atomic.Int32
			if tc.cancel {
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			done := make(chan error, 1)
			go func() { done <- Run(ctx, tc.tasks(&stopped)...) }()
			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("Run = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			// Run returned, so every task has returned: their counts are final.
			if got := stopped.Load(); got != tc.stopped {
				t.Errorf("%d tasks saw the context end, want %d", got, tc.stopped)
			}
		})
	}
}

// TestRunWaitsForAll: Run does not return while a task is still shutting
// down, even after a failure.
func TestRunWaitsForAll(t *testing.T) {
	var finished atomic.Bool
	slow := func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		return nil
	}
	err := Run(context.Background(), slow, func(context.Context) error { return errors.New("fail") })
	if err == nil || err.Error() != "fail" {
		t.Fatalf("Run = %v", err)
	}
	if !finished.Load() {
		t.Fatal("Run returned before the slow task had finished")
	}
}

// TestRunFailureAfterCancel: a task that fails for its own reason while the
// agent stops still reports it; context errors during a stop do not count.
func TestRunFailureAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errClose := errors.New("could not close")
	err := Run(ctx,
		func(ctx context.Context) error { <-ctx.Done(); return errClose },
		func(ctx context.Context) error { <-ctx.Done(); return context.Canceled },
	)
	if !errors.Is(err, errClose) {
		t.Fatalf("Run = %v, want %v", err, errClose)
	}
}
