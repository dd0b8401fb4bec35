package long_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/long"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

func TestOperations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := copycattest.NewCluster(t, 3, long.LongType)
	n, err := long.OpenLong(ctx, c.Client(), "n")
	require.NoError(t, err)

	v, err := n.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(0), v)

	require.NoError(t, n.Set(ctx, 5))
	v, err = n.Get(ctx, client.WithConsistency(runtime.Sequential))
	require.NoError(t, err)
	assert.Equal(t, int64(5), v)

	v, err = n.AddAndGet(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(8), v)

	v, err = n.GetAndAdd(ctx, -10)
	require.NoError(t, err)
	assert.Equal(t, int64(8), v)

	v, err = n.IncrementAndGet(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(-1), v)

	ok, err := n.CompareAndSet(ctx, 7, 100)
	require.NoError(t, err)
	assert.False(t, ok, "value is -1, not 7")
	ok, err = n.CompareAndSet(ctx, -1, 100)
	require.NoError(t, err)
	assert.True(t, ok)

	v, err = n.Get(ctx, client.WithConsistency(runtime.LinearizableLease))
	require.NoError(t, err)
	assert.Equal(t, int64(100), v)

	// Another client sees the same instance.
	other, err := long.OpenLong(ctx, c.Client(), "n")
	require.NoError(t, err)
	v, err = other.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(100), v)
	// And another name is another instance.
	fresh, err := long.OpenLong(ctx, c.Client(), "m")
	require.NoError(t, err)
	v, err = fresh.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(0), v)
}

// TestLeaderCrash increments through a leader crash: every increment applies
// exactly once.
func TestLeaderCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := copycattest.NewCluster(t, 3, long.LongType)
	n, err := long.OpenLong(ctx, c.Client(), "n")
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		_, err := n.IncrementAndGet(ctx)
		require.NoError(t, err)
	}
	lead := c.Leader()
	c.Crash(lead)
	for i := 0; i < 10; i++ {
		_, err := n.IncrementAndGet(ctx)
		require.NoError(t, err)
	}
	c.Restart(lead)
	v, err := n.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(20), v)
}

func TestSnapshot(t *testing.T) {
	res := long.LongType.New()
	_, err := res.Execute(nil, long.LongSetOp, mustMarshal(t, &long.LongSet{Value: 42}))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, res.(runtime.Snapshotter).Snapshot(&buf))
	restored := long.LongType.New()
	require.NoError(t, restored.(runtime.Snapshotter).Restore(&buf))
	out, err := restored.Execute(nil, long.LongGetOp, nil)
	require.NoError(t, err)
	var r long.LongGetResult
	require.NoError(t, unmarshal(out, &r))
	assert.Equal(t, int64(42), r.Value)
}
