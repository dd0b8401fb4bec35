package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/copycat-go/copycat/resources/lock"
)

// lockShape is one lock phase: contenders spread over keys locks
// (contender i uses lock i mod keys).
type lockShape struct{ keys, contenders int }

// lockShapes are the peers' three lock phases.
var lockShapes = []lockShape{{1, 1}, {1, benchLockClients}, {benchLockClients, benchLockClients}}

// runLock measures Lock+Unlock cycles in each of the peers' shapes.
func (b *bench) runLock(ctx context.Context) error {
	for _, s := range lockShapes {
		if err := b.lockPhase(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// lockPhase runs one shape: each contender has its own client (session)
// and Mutex, and loops Lock + Unlock, as etcd's contenders loop
// concurrency.Mutex Lock + Unlock each with its own session.
func (b *bench) lockPhase(ctx context.Context, s lockShape) error {
	clis, err := b.connectN(ctx, s.contenders, "lock")
	if err != nil {
		return err
	}
	defer closeAll(clis)
	mutexes := make([]*lock.Mutex, s.contenders)
	errs := make([]error, s.contenders)
	var wg sync.WaitGroup
	for i, c := range clis {
		wg.Go(func() {
			// Names unique to the run and phase, as etcd's phases use their
			// own key prefixes: nothing left from an earlier run can queue
			// ahead.
			name := fmt.Sprintf("copycat-bench-%s/lock/k%d-c%d-%d", b.runID, s.keys, s.contenders, i%s.keys)
			octx, cancel := b.opContext(ctx)
			defer cancel()
			mutexes[i], errs[i] = lock.NewMutex(octx, c.Client, name)
		})
	}
	wg.Wait()
	defer func() {
		for _, m := range mutexes {
			if m != nil {
				_ = m.Close()
			}
		}
	}()
	if err := firstError(errs); err != nil {
		return err
	}
	r := b.timed(ctx, fmt.Sprintf("lock keys=%d c=%d", s.keys, s.contenders), s.contenders, func(ctx context.Context, w int, _ *rand.Rand) error {
		m := mutexes[w]
		lctx, cancel := b.opContext(ctx)
		defer cancel()
		if _, err := m.Lock(lctx); err != nil {
			return err
		}
		// Unlock even after the phase's end, so that no lock stays held
		// and no contender waits for one.
		uctx, ucancel := b.opContext(context.WithoutCancel(ctx))
		defer ucancel()
		return m.Unlock(uctx)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.line("copycat lock", append([]string{fmt.Sprintf("keys=%d", s.keys), fmt.Sprintf("c=%d", s.contenders)}, resultFields(r, "cycles/s")...)...)
	return nil
}
