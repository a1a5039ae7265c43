// Package task runs the parts of the agent together: each part is a
// function of a context, and they all share one. The first part to fail
// cancels the others, and Run returns only once every part has returned,
// so that nothing outlives the agent.
package task

import (
	"context"
	"errors"
	"sync"
)

// Task is one long-running part. It returns when ctx is done (with nil or
// ctx's error) or when it cannot go on (with the reason).
type Task func(ctx context.Context) error

// Run runs every task in its own goroutine until ctx is done or one of them
// fails, cancels the rest, and waits for all of them. It returns the first
// failure, or nil when the tasks ended because ctx was done. A task that
// returns nil before ctx is done simply ends; the others go on.
func Run(ctx context.Context, tasks ...Task) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, t := range tasks {
		if t == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := t(ctx)
			if err == nil || (ctx.Err() != nil && isContextErr(err)) {
				return // ended, or stopped because the others stop
			}
			once.Do(func() {
				first = err
				cancel(err)
			})
		}()
	}
	wg.Wait()
	return first
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Go adapts a function without a result to a Task.
func Go(f func(ctx context.Context)) Task {
	return func(ctx context.Context) error {
		f(ctx)
		return nil
	}
}
