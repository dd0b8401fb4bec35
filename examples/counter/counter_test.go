package counter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/examples/counter"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

func TestCounter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster := copycattest.NewCluster(t, 3, counter.CounterType)
	hits, err := counter.OpenCounter(ctx, cluster.Client(), "hits")
	require.NoError(t, err)

	crossed := make(chan counter.Crossed, 10)
	defer hits.OnCrossed(func(e counter.Crossed) { crossed <- e })()

	n, err := hits.Add(ctx, 150)
	require.NoError(t, err)
	assert.Equal(t, int64(150), n)
	select {
	case e := <-crossed:
		assert.Equal(t, counter.Crossed{Milestone: 100, Value: 150}, e)
	case <-ctx.Done():
		t.Fatal("no Crossed event")
	}

	// The error keeps its identity across the wire; the counter is unchanged.
	_, err = hits.Add(ctx, -151)
	assert.ErrorIs(t, err, counter.ErrNegative)
	n, err = hits.Increment(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(151), n)
	n, err = hits.Add(ctx, -51)
	require.NoError(t, err)
	assert.Equal(t, int64(100), n)
	select {
	case e := <-crossed:
		t.Fatalf("unexpected %+v: no milestone was crossed upwards", e)
	default:
	}

	// Another client opens the same instance by name, and reads its own
	// writes even with a sequential read served by any member.
	other, err := counter.OpenCounter(ctx, cluster.Client(), "hits")
	require.NoError(t, err)
	_, err = other.Increment(ctx)
	require.NoError(t, err)
	n, err = other.Get(ctx, client.WithConsistency(runtime.Sequential))
	require.NoError(t, err)
	assert.Equal(t, int64(101), n)
}

// Concurrent increments from several clients each count exactly once, also
// across a crash of the leader.
func TestCounterConcurrentIncrementsSurviveLeaderCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster := copycattest.NewCluster(t, 3, counter.CounterType)
	const clients, each = 4, 50

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		ctr, err := counter.OpenCounter(ctx, cluster.Client(), "hits")
		require.NoError(t, err)
		wg.Go(func() {
			for range each {
				if _, err := ctr.Increment(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// Crash the leader while they run; the clients carry on with the next.
	cluster.Crash(cluster.WaitLeader(10 * time.Second))
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	ctr, err := counter.OpenCounter(ctx, cluster.Client(), "hits")
	require.NoError(t, err)
	n, err := ctr.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(clients*each), n)
}
