package syncer

import (
	"context"
	"sync"
)

// pipelined runs list in its own goroutine and hands each page it produces
// to store in the caller's goroutine, with one page in flight: the next
// page is fetched and decoded while the last one is written. An error on
// either side stops both and is returned.
func pipelined[T any](ctx context.Context, list func(context.Context, func(T) error) error, store func(T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pages := make(chan T)
	var listErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(pages)
		listErr = list(ctx, func(p T) error {
			select {
			case pages <- p:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
	})
	var storeErr error
	for p := range pages {
		if storeErr != nil {
			continue // drain so the lister can finish
		}
		if err := store(p); err != nil {
			storeErr = err
			cancel(err)
		}
	}
	wg.Wait()
	if storeErr != nil {
		return storeErr
	}
	return listErr
}
