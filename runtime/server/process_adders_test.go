//go:build unix

package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/internal/counter"
)

// adders are clients adding 1 to a counter on a process cluster, recording
// every acknowledged result, for tests that break members meanwhile and
// then check that each acknowledged Add applied exactly once.
type adders struct {
	t       *testing.T
	pc      *procCluster
	acked   atomic.Int64
	mu      sync.Mutex
	values  []int64
	wg      sync.WaitGroup
	stop    chan struct{}
	errs    chan error
	handles []*counter.Client
	sids    []uint64
}

// startAdders connects clients sessions to pc, each running perClient
// goroutines (so commands are also pipelined within a session) that Add
// until stopped. Calls have no deadline shorter than ctx's: a call that gave
// up could still apply later, and the count of acknowledged Adds would not
// be exact.
func startAdders(t *testing.T, ctx context.Context, pc *procCluster, clients, perClient int) *adders {
	a := &adders{t: t, pc: pc, stop: make(chan struct{}), errs: make(chan error, clients*perClient)}
	for i := range clients {
		cli, err := client.Connect(ctx, pc.Addrs(), client.WithClusterID(pc.id), client.WithClientID(fmt.Sprintf("writer-%d", i)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		ctr, err := counter.Open(ctx, cli, "procs")
		require.NoError(t, err)
		a.handles = append(a.handles, ctr)
		a.sids = append(a.sids, cli.SessionID())
	}
	for i := range clients * perClient {
		ctr := a.handles[i/perClient]
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			last := int64(0)
			for {
				select {
				case <-a.stop:
					return
				default:
				}
				v, err := ctr.Add(ctx, 1)
				if err != nil {
					a.errs <- fmt.Errorf("writer %d: Add: %w", i, err)
					return
				}
				if v <= last {
					a.errs <- fmt.Errorf("writer %d: Add returned %d after %d: not in program order", i, v, last)
					return
				}
				last = v
				a.mu.Lock()
				a.values = append(a.values, v)
				a.mu.Unlock()
				a.acked.Add(1)
			}
		}()
	}
	t.Cleanup(a.stopAll)
	return a
}

func (a *adders) resource() uint64 { return a.handles[0].Resource().ID() }

// waitAcks waits until n Adds were acknowledged, failing on a writer's error.
func (a *adders) waitAcks(n int64, timeout time.Duration, what string) {
	a.t.Helper()
	waitFor(a.t, timeout, fmt.Sprintf("%d acknowledged Adds (%s)", n, what), func() bool {
		select {
		case err := <-a.errs:
			a.t.Fatal(err)
		default:
		}
		return a.acked.Load() >= n
	})
}

func (a *adders) stopAll() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	a.wg.Wait()
}

// check stops the writers and checks exactly-once: the Adds returned
// exactly 1..N, the counter reads N, every member applied up to the
// leader's commit index holds N, and every session survived. It returns N.
func (a *adders) check(ctx context.Context) int64 {
	t := a.t
	t.Helper()
	a.stopAll()
	close(a.errs)
	for err := range a.errs {
		require.NoError(t, err)
	}
	n := a.acked.Load()
	a.mu.Lock()
	got := slices.Clone(a.values)
	a.mu.Unlock()
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("the Adds' results are not exactly 1..%d: position %d holds %d (an Add lost or applied twice)", n, i, v)
		}
	}
	final, err := a.handles[0].Get(ctx, client.WithConsistency(runtime.Linearizable))
	require.NoError(t, err)
	require.Equal(t, n, final, "the counter equals the number of acknowledged Adds")

	_, lst := a.pc.leader()
	for _, id := range a.pc.IDs() {
		waitFor(t, 10*time.Second, fmt.Sprintf("member %d to apply index %d", id, lst.Commit), func() bool {
			st, err := a.pc.status(id)
			return err == nil && st.Applied >= lst.Commit
		})
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		v, _, err := pinnedGet(rctx, a.pc.procs[id].addr, a.pc.id, a.resource(), lst.Commit)
		rcancel()
		require.NoError(t, err, "member %d", id)
		require.Equal(t, n, v, "member %d's counter", id)
	}
	for i, h := range a.handles {
		require.Equal(t, a.sids[i], h.Resource().Client().SessionID())
		require.NotEqual(t, client.StateExpired, h.Resource().Client().State())
	}
	return n
}

// closeClients closes the adders' clients.
func (a *adders) closeClients() {
	for _, h := range a.handles {
		require.NoError(a.t, h.Resource().Client().Close())
	}
}
