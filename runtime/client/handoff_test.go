package client_test

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/internal/counter"
	"github.com/copycat-go/copycat/runtime/internal/register"
)

// connectOne starts a one-member cluster and connects a client to it.
func connectOne(t *testing.T, ctx context.Context) *client.Client {
	t.Helper()
	addr := tcpCluster(t, 1)[0].Addr()
	cli, err := client.Connect(ctx, []string{addr}, client.WithClusterID(clusterID))
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// A command whose predecessors were delivered is handed to its caller by
// the goroutine that read its answer: no goroutine is started for it, and
// the caller is woken once, not through a relay.
func TestAnswerDeliveredWithoutRelay(t *testing.T) {
	var relays atomic.Int64
	t.Cleanup(client.CountDelivery(&relays))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli := connectOne(t, ctx)
	// A register publishes no events: its answers wait for nothing.
	reg, err := register.Open(ctx, cli, "relay")
	require.NoError(t, err)
	relays.Store(0)
	for i := range 50 {
		require.NoError(t, reg.Put(ctx, "k", int64(i)))
		v, err := reg.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, int64(i), v)
	}
	assert.Zero(t, relays.Load(), "answers relayed through a goroutine of their own")
}

// Commands pipelined by several goroutines at once, written by whichever
// caller finds the connection free, keep each goroutine's program order and
// apply exactly once.
func TestPipelinedCallersKeepOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli := connectOne(t, ctx)
	ctr, err := counter.Open(ctx, cli, "order")
	require.NoError(t, err)
	const callers, each = 4, 50
	results := make([][]int64, callers)
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			ps := make([]*client.Pending, each)
			for i := range ps {
				p, err := ctr.Resource().Start(counter.OpAdd, binary.AppendVarint(nil, 1))
				if !assert.NoError(t, err) {
					return
				}
				ps[i] = p
			}
			for _, p := range ps {
				select {
				case <-p.Done():
				case <-ctx.Done():
					t.Error(ctx.Err())
					return
				}
				b, err := p.Result()
				if !assert.NoError(t, err) {
					return
				}
				v, _ := binary.Varint(b)
				results[g] = append(results[g], v)
			}
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for g, rs := range results {
		require.Len(t, rs, each, "caller %d", g)
		for i, v := range rs {
			if i > 0 {
				assert.Greater(t, v, rs[i-1], "caller %d: command %d applied before an earlier one", g, i)
			}
			assert.False(t, seen[v], "value %d twice", v)
			seen[v] = true
		}
	}
	assert.Len(t, seen, callers*each)
}
