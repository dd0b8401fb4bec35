package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
)

// The map workloads: puts and gets shaped like the peers' etcd put and get
// (16-byte keys, 128-byte values, uniform keys, one client per worker).

// benchValue is the value every put writes: printable pseudo-random bytes,
// the same for every run (etcd's benchmark writes one fixed value too).
var benchValue = func() []byte {
	const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(3, 3))
	b := make([]byte, benchValueSize)
	for i := range b {
		b[i] = alpha[rng.IntN(len(alpha))]
	}
	return b
}()

// openMaps connects n clients and opens the bench map on each.
func (b *bench) openMaps(ctx context.Context, n int, name string) ([]*shellClient, []*dmap.MapClient, error) {
	clis, err := b.connectN(ctx, n, name)
	if err != nil {
		return nil, nil, err
	}
	maps := make([]*dmap.MapClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range clis {
		wg.Go(func() {
			octx, cancel := b.opContext(ctx)
			defer cancel()
			if maps[i], errs[i] = dmap.OpenMap(octx, c.Client, benchMapName); errs[i] != nil {
				errs[i] = fmt.Errorf("open map %q: %w", benchMapName, errs[i])
			}
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		closeAll(clis)
		return nil, nil, err
	}
	return clis, maps, nil
}

// runPut measures map Puts at each --clients concurrency.
func (b *bench) runPut(ctx context.Context) error {
	for _, c := range b.plan.clients {
		clis, maps, err := b.openMaps(ctx, c, "put")
		if err != nil {
			return err
		}
		r := b.timed(ctx, fmt.Sprintf("put c=%d", c), c, func(ctx context.Context, w int, rng *rand.Rand) error {
			key := fmt.Sprintf("/pb/put/%08d", rng.IntN(benchKeySpace)) // 16 bytes
			octx, cancel := b.opContext(ctx)
			defer cancel()
			_, err := maps[w].Put(octx, key, benchValue, 0)
			return err
		})
		closeAll(clis)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.line("copycat put", append([]string{fmt.Sprintf("c=%d", c), fmt.Sprintf("size=%d", benchValueSize)}, resultFields(r, "ops/s")...)...)
	}
	return nil
}

// getMode is one read consistency the get workloads measure.
type getMode struct {
	workload string // its --workload name
	mode     string // its mode= field
	cons     runtime.Consistency
}

var getModes = []getMode{
	{wlGet, "linearizable", runtime.Linearizable},
	{wlGetLease, "linearizable_lease", runtime.LinearizableLease},
	{wlGetSeq, "sequential", runtime.Sequential},
}

// runGet writes the keys the reads read, then measures each mode at each
// --clients concurrency.
func (b *bench) runGet(ctx context.Context, modes []getMode) error {
	n := 0
	for _, c := range b.plan.clients {
		n = max(n, c)
	}
	clis, maps, err := b.openMaps(ctx, n, "get")
	if err != nil {
		return err
	}
	defer closeAll(clis)
	if err := b.fillGetKeys(ctx, maps); err != nil {
		return err
	}
	for _, m := range modes {
		for _, c := range b.plan.clients {
			r := b.timed(ctx, fmt.Sprintf("get c=%d mode=%s", c, m.mode), c, func(ctx context.Context, w int, rng *rand.Rand) error {
				key := getKey(rng.IntN(benchGetKeys))
				octx, cancel := b.opContext(ctx)
				defer cancel()
				v, err := maps[w].Get(octx, key, client.WithConsistency(m.cons))
				if err == nil && len(v) != benchValueSize {
					err = fmt.Errorf("get %s: %d bytes, want %d", key, len(v), benchValueSize)
				}
				return err
			})
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.line("copycat get", append([]string{fmt.Sprintf("c=%d", c), "mode=" + m.mode}, resultFields(r, "ops/s")...)...)
		}
	}
	return nil
}

func getKey(i int) string { return fmt.Sprintf("/pb/get/%08d", i) }

// fillGetKeys writes the keys the reads read, spread over the clients.
func (b *bench) fillGetKeys(ctx context.Context, maps []*dmap.MapClient) error {
	b.prog.show(fmt.Sprintf("copycat bench: get: writing %d keys", benchGetKeys))
	defer b.prog.clear()
	errs := make([]error, len(maps))
	var wg sync.WaitGroup
	for w, m := range maps {
		wg.Go(func() {
			for i := w; i < benchGetKeys; i += len(maps) {
				octx, cancel := b.opContext(ctx)
				_, err := m.Put(octx, getKey(i), benchValue, 0)
				cancel()
				if err != nil {
					errs[w] = fmt.Errorf("write %s before the reads: %w", getKey(i), err)
					return
				}
			}
		})
	}
	wg.Wait()
	return firstError(errs)
}
