package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/resources/dmap"
	valuer "github.com/copycat-go/copycat/resources/value"
	"github.com/copycat-go/copycat/runtime/copycattest"
	"github.com/copycat-go/copycat/runtime/node"
	"github.com/copycat-go/copycat/runtime/protocol"
)

// compacting is a cluster configuration that compacts every few dozen
// entries, so that tests see images, cleaning and snapshot streams.
var compacting = copycattest.Options{SnapshotEntries: 40, TrailingEntries: 10}

// Large values trigger images by their bytes long before SnapshotEntries
// entries: 48 puts of 8 KiB with a 64 KiB byte trigger take images and move
// the compaction point on every member, while the same puts under the
// default byte trigger take none.
func TestCompaction_ImagesByBytes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		bytes  int64
		images bool
	}{
		{"byte trigger", 64 << 10, true},
		{"default", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := copycattest.NewClusterWith(t, 3, copycattest.Options{SnapshotEntries: 1 << 20, TrailingEntries: 4, SnapshotBytes: tt.bytes}, valuer.ValueType)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			v, err := valuer.OpenValue(ctx, c.Client(), "v")
			require.NoError(t, err)
			val := make([]byte, 8<<10)
			for i := range 48 {
				val[0] = byte(i)
				require.NoError(t, v.Set(ctx, val, 0))
			}
			if !tt.images {
				c.WaitConverged(10 * time.Second)
				for _, id := range c.IDs() {
					assert.Zero(t, c.Member(id).Server().CompactionStats().Images, "member %d", id)
				}
				return
			}
			c.Eventually(10*time.Second, "every member to compact by bytes", func() bool {
				for _, id := range c.IDs() {
					if st := c.Member(id).Server().CompactionStats(); st.Images < 2 || st.Point == 0 {
						return false
					}
				}
				return true
			})
		})
	}
}

// A member that was down while the leader compacted past everything it had
// catches up from the leader's image and live entries; a brand-new member
// joins the same way; every member ends with the same state, and a restart
// of all of them comes back to it from their own compaction points.
func TestCompaction_CatchUpJoinAndRestart(t *testing.T) {
	c := copycattest.NewClusterWith(t, 3, compacting, dmap.MapType, valuer.ValueType)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := c.Client()
	m, err := dmap.OpenMap(ctx, cli, "m")
	require.NoError(t, err)
	v, err := valuer.OpenValue(ctx, cli, "v")
	require.NoError(t, err)

	lead := c.WaitLeader(10 * time.Second)
	lag := c.IDs()[0]
	if lag == lead {
		lag = c.IDs()[1]
	}
	lagLast := c.Member(lag).Server().Status().LastIndex
	c.Crash(lag)
	const keys, puts = 20, 400
	for i := range puts {
		_, err := m.Put(ctx, fmt.Sprint(i%keys), []byte(fmt.Sprint(i)), 0)
		require.NoError(t, err)
		if i%50 == 0 {
			require.NoError(t, v.Set(ctx, []byte(fmt.Sprint(i)), 0))
		}
	}
	c.Eventually(10*time.Second, "the leader to compact past the crashed member's log", func() bool {
		return c.Member(c.Leader()).Server().CompactionStats().Point > lagLast
	})
	st := c.Member(c.Leader()).Server().CompactionStats()
	assert.LessOrEqual(t, st.Live, keys+2, "live entries at the compaction point: one put per key (and no more)")

	c.Restart(lag)
	c.WaitConverged(20 * time.Second)
	got := c.Member(lag).Server().SnapshotStats()
	assert.Positive(t, got.Received, "the restarted member caught up by a snapshot stream")
	t.Logf("catch-up of a restarted member: %+v", got.LastInstalled)

	nm, err := c.AddMember(ctx)
	require.NoError(t, err)
	c.Eventually(20*time.Second, "the new member to install a snapshot", func() bool {
		srv := nm.Server()
		return srv != nil && srv.SnapshotStats().Received > 0
	})
	digest := c.WaitConverged(20 * time.Second)
	t.Logf("a new member's catch-up: %+v", nm.Server().SnapshotStats().LastInstalled)

	for i := range keys {
		got, err := m.Get(ctx, fmt.Sprint(i))
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(puts-keys+i), string(got), "key %d", i)
	}
	cur, err := v.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint((puts-1)/50*50), string(cur))

	// Every member restarts from its own compaction point and log.
	for _, id := range c.IDs() {
		c.Crash(id)
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	c.WaitLeader(10 * time.Second)
	after := c.WaitConverged(20 * time.Second)
	assert.NotEmpty(t, after)
	_ = digest
}

// Exactly-once holds across compaction: a command retried after its entry
// was compacted away gets its original response from the session state in
// the image, not a second application (copycat#330).
func TestCompaction_RetryAfterCompactionAppliesOnce(t *testing.T) {
	c := copycattest.NewClusterWith(t, 3, compacting, dmap.MapType)
	r := dialLeader(t, c)
	open := r.call(&protocol.Message{Type: protocol.OpenSession, TimeoutNs: int64(5 * time.Second)})
	require.Equal(t, protocol.OK, open.Status)
	sid := open.Session
	res := r.call(&protocol.Message{Type: protocol.OpenResource, Session: sid, ResType: dmap.MapType.Name, Name: "once"})
	require.Equal(t, protocol.OK, res.Status)
	put := func(seq uint64, key, val string) *protocol.Message {
		args, err := msgpack.Marshal(&dmap.MapPut{Key: key, Value: []byte(val)})
		require.NoError(t, err)
		return r.call(&protocol.Message{Type: protocol.Command, Session: sid, Sequence: seq, Resource: res.Resource, Op: dmap.MapPutOp, Args: args})
	}
	first := put(1, "k", "first")
	require.Equal(t, protocol.OK, first.Status)
	// Push the log well past the first command and wait for the compaction
	// point to pass it.
	for seq := uint64(2); seq <= 150; seq++ {
		require.Equal(t, protocol.OK, put(seq, fmt.Sprint("other", seq%5), "x").Status)
	}
	c.Eventually(10*time.Second, "compaction past the first command", func() bool {
		return c.Member(c.Leader()).Server().CompactionStats().Point > first.Index
	})
	retry := put(1, "k", "second")
	require.Equal(t, protocol.OK, retry.Status)
	assert.Equal(t, first.Index, retry.Index, "the original response")
	assert.Equal(t, first.Result, retry.Result)
}

// A snapshot transfer that takes longer than the log's trailing window still
// converges while writes go on: the leader does not compact past a snapshot
// it is streaming, so the follower continues from the log after installing
// it instead of needing another snapshot for ever (consul#9609).
func TestCompaction_SlowTransferConvergesUnderWrites(t *testing.T) {
	c := copycattest.NewClusterWith(t, 3, compacting, dmap.MapType)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := dmap.OpenMap(ctx, c.Client(), "m")
	require.NoError(t, err)
	for i := range 200 {
		_, err := m.Put(ctx, fmt.Sprint(i%30), []byte(fmt.Sprint(i)), 0)
		require.NoError(t, err)
	}
	c.Eventually(10*time.Second, "a compaction point", func() bool {
		return c.Member(c.Leader()).Server().CompactionStats().Point > 0
	})
	// Writes go on at full speed while the new member catches up over
	// slow links: every message to and from it takes 20–60 ms, during which
	// the others apply far more than a trailing window of entries.
	stop := make(chan struct{})
	done := make(chan error, 1)
	var written atomic.Int64
	go func() {
		for i := 0; ; i++ {
			written.Add(1)
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := m.Put(ctx, fmt.Sprint(i%30), []byte(fmt.Sprint(i)), 0); err != nil {
				done <- err
				return
			}
		}
	}()
	next := c.IDs()[len(c.IDs())-1] + 1
	for _, id := range c.IDs() {
		c.Delay(id, next, 20*time.Millisecond, 60*time.Millisecond)
		c.Delay(next, id, 20*time.Millisecond, 60*time.Millisecond)
	}
	nm, err := c.AddMember(ctx)
	require.NoError(t, err)
	require.Equal(t, next, nm.ID)
	c.Eventually(30*time.Second, "the new member to install a snapshot", func() bool {
		srv := nm.Server()
		return srv != nil && srv.SnapshotStats().Received > 0
	})
	// A thousand more writes after the install: the follower must be kept
	// fed from the log, not sent one snapshot after another.
	target := written.Load() + 1000
	c.Eventually(30*time.Second, "a thousand more writes", func() bool { return written.Load() >= target })
	close(stop)
	require.NoError(t, <-done)
	c.WaitConverged(30 * time.Second)
	st := nm.Server().SnapshotStats()
	assert.Equal(t, 1, st.Received, "the member caught up from the log after its snapshot")
	t.Logf("snapshots installed by the new member: %d; last: %+v", st.Received, st.LastInstalled)
}

// A snapshot of several chunks reaches a new member over a link that loses
// a third of its messages: lost chunks and acknowledgements are sent again
// (go-back-N from the last acknowledgement), and the member ends with the
// leader's state.
func TestCompaction_SnapshotStreamOverLossyLink(t *testing.T) {
	c := copycattest.NewClusterWith(t, 3, compacting, dmap.MapType)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := dmap.OpenMap(ctx, c.Client(), "big")
	require.NoError(t, err)
	value := make([]byte, 8<<10)
	for i := range 300 { // ~2.4 MB of live values: three chunks of 1 MiB
		value[0] = byte(i)
		_, err := m.Put(ctx, fmt.Sprint(i), value, 0)
		require.NoError(t, err)
	}
	// Small writes move the compaction point past the big ones.
	bigDone := c.Member(c.Leader()).Server().Status().Applied
	pad := 0
	c.Eventually(20*time.Second, "a compaction point past the big puts", func() bool {
		pad++
		_, err := m.Put(ctx, "pad", []byte(fmt.Sprint(pad)), 0)
		require.NoError(t, err)
		return c.Member(c.Leader()).Server().CompactionStats().Point > bigDone
	})
	next := c.IDs()[len(c.IDs())-1] + 1
	for _, id := range c.IDs() {
		c.Drop(id, next, 0.33)
		c.Drop(next, id, 0.33)
	}
	nm, err := c.AddMember(ctx)
	require.NoError(t, err)
	c.Eventually(40*time.Second, "the new member to install the snapshot", func() bool {
		srv := nm.Server()
		return srv != nil && srv.SnapshotStats().Received > 0
	})
	c.Heal()
	c.WaitConverged(20 * time.Second)
	var sent node.StreamStats
	for _, id := range c.IDs() {
		if st := c.Member(id).Server().SnapshotStats(); st.Sent > 0 {
			sent = st.LastSent
		}
	}
	got := nm.Server().SnapshotStats().LastInstalled
	t.Logf("sent: %+v; installed: %+v", sent, got)
	assert.GreaterOrEqual(t, got.Chunks, 3, "the snapshot took several chunks")
}
