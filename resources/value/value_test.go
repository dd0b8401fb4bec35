package value_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/resources/value"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

var (
	sequential   = client.WithConsistency(runtime.Sequential)
	linearizable = client.WithConsistency(runtime.Linearizable)
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOperations(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, value.ValueType)
	v, err := value.OpenValue(ctx, c.Client(), "v")
	require.NoError(t, err)

	b, err := v.Get(ctx)
	require.NoError(t, err)
	assert.Nil(t, b, "unset")

	require.NoError(t, v.Set(ctx, []byte("one"), 0))
	b, err = v.Get(ctx, sequential)
	require.NoError(t, err)
	assert.Equal(t, []byte("one"), b)

	ok, err := v.CompareAndSet(ctx, []byte("nope"), []byte("two"))
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = v.CompareAndSet(ctx, []byte("one"), []byte("two"))
	require.NoError(t, err)
	assert.True(t, ok)

	old, err := v.GetAndSet(ctx, []byte("three"))
	require.NoError(t, err)
	assert.Equal(t, []byte("two"), old)
	b, err = v.Get(ctx, client.WithConsistency(runtime.LinearizableLease))
	require.NoError(t, err)
	assert.Equal(t, []byte("three"), b)

	// Unset again, and compare against unset.
	old, err = v.GetAndSet(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, []byte("three"), old)
	ok, err = v.CompareAndSet(ctx, nil, []byte("four"))
	require.NoError(t, err)
	assert.True(t, ok)

	err = v.Set(ctx, []byte("x"), -time.Second)
	assert.ErrorIs(t, err, value.ErrNegativeTTL)
	b, err = v.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, []byte("four"), b, "a refused Set changes nothing")
}

// TestTTL sets a value with a time to live and watches it expire through the
// client at both consistency levels and on every member's own state, at the
// same state machine time.
func TestTTL(t *testing.T) {
	ctx := testContext(t)
	var p copycattest.Probe
	c := copycattest.NewCluster(t, 3, p.Wrap(value.ValueType))
	v, err := value.OpenValue(ctx, c.Client(), "ttl")
	require.NoError(t, err)

	require.NoError(t, v.Set(ctx, []byte("lease"), 400*time.Millisecond))
	b, err := v.Get(ctx, linearizable)
	require.NoError(t, err)
	assert.Equal(t, []byte("lease"), b)

	c.Eventually(10*time.Second, "expiry seen by a sequential query", func() bool {
		b, err := v.Get(ctx, sequential)
		return err == nil && b == nil
	})
	b, err = v.Get(ctx, linearizable)
	require.NoError(t, err)
	assert.Nil(t, b)
	checkExpiredEverywhere(t, c, &p, "ttl", 3)

	// A later write without a ttl cancels an earlier expiry.
	require.NoError(t, v.Set(ctx, []byte("short"), 200*time.Millisecond))
	ok, err := v.CompareAndSet(ctx, []byte("short"), []byte("kept"))
	require.NoError(t, err)
	require.True(t, ok)
	time.Sleep(600 * time.Millisecond)        // several keep-alives move log time past the old deadline
	_, err = v.GetAndSet(ctx, []byte("kept")) // and one more entry
	require.NoError(t, err)
	b, err = v.Get(ctx, linearizable)
	require.NoError(t, err)
	assert.Equal(t, []byte("kept"), b)
}

// checkExpiredEverywhere waits until at least n instances named name (one
// per running member; a crashed member's old instance stops where it
// crashed) have fired their timer and hold nil, and checks that every
// instance that fired did so at the same state machine time.
func checkExpiredEverywhere(t *testing.T, c *copycattest.Cluster, p *copycattest.Probe, name string, n int) {
	t.Helper()
	var fired []*copycattest.Instance
	c.Eventually(10*time.Second, "every member expires the value", func() bool {
		fired = fired[:0]
		for _, r := range p.Instances(name) {
			if len(r.Firings()) == 0 {
				continue
			}
			var res value.ValueGetResult
			r.Query(t, value.ValueGetOp, nil, &res)
			assert.Nil(t, res.Value, "expired once its timer fired")
			fired = append(fired, r)
		}
		return len(fired) >= n
	})
	first := fired[0].Firings()
	for _, r := range fired[1:] {
		assert.Equal(t, first, r.Firings(), "timers fire at the same log time on every member")
	}
}

// TestTTLLeaderCrash crashes the leader right after it accepted a value with
// a time to live: the value still expires under the next leader, and the old
// leader, restarted, expires it at the same log time.
func TestTTLLeaderCrash(t *testing.T) {
	ctx := testContext(t)
	var p copycattest.Probe
	c := copycattest.NewCluster(t, 3, p.Wrap(value.ValueType))
	v, err := value.OpenValue(ctx, c.Client(), "crash")
	require.NoError(t, err)
	require.NoError(t, v.Set(ctx, []byte("lease"), 500*time.Millisecond))
	old := c.Leader()
	c.Crash(old)
	b, err := v.Get(ctx, linearizable)
	require.NoError(t, err)
	if b != nil {
		assert.Equal(t, []byte("lease"), b)
	}
	c.Eventually(15*time.Second, "expiry under the new leader", func() bool {
		b, err := v.Get(ctx, linearizable)
		return err == nil && b == nil
	})
	assert.NotEqual(t, old, c.Leader())
	b, err = v.Get(ctx, sequential)
	require.NoError(t, err)
	assert.Nil(t, b)
	c.Restart(old)
	// The two that stayed up and the restarted member's new instance.
	checkExpiredEverywhere(t, c, &p, "crash", 3)
}

type recorder struct {
	mu     sync.Mutex
	events []value.Changed
}

func (r *recorder) add(e value.Changed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) get() []value.Changed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]value.Changed(nil), r.events...)
}

func TestEvents(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, value.ValueType)
	watcher, err := value.OpenValue(ctx, c.Client(), "ev")
	require.NoError(t, err)
	writer, err := value.OpenValue(ctx, c.Client(), "ev")
	require.NoError(t, err)

	var seen, unheard recorder
	stop, err := watcher.Watch(ctx, seen.add)
	require.NoError(t, err)
	// The writer's session registers a local listener without listening.
	cancel := writer.OnChanged(unheard.add)
	defer cancel()

	require.NoError(t, writer.Set(ctx, []byte("a"), 0))
	require.NoError(t, writer.Set(ctx, []byte("a"), 0)) // no change, no event
	_, err = writer.GetAndSet(ctx, []byte("b"))
	require.NoError(t, err)
	ok, err := writer.CompareAndSet(ctx, []byte("b"), []byte("c"))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, writer.Set(ctx, []byte("d"), 300*time.Millisecond))
	want := []value.Changed{
		{New: []byte("a")},
		{Old: []byte("a"), New: []byte("b")},
		{Old: []byte("b"), New: []byte("c")},
		{Old: []byte("c"), New: []byte("d")},
		{Old: []byte("d"), Expired: true},
	}
	c.Eventually(10*time.Second, "five events", func() bool { return len(seen.get()) >= len(want) })
	assert.Equal(t, want, seen.get())
	assert.Empty(t, unheard.get(), "a session that did not Listen hears nothing")

	// Listening twice is once; after stop, nothing more arrives.
	require.NoError(t, watcher.Listen(ctx))
	require.NoError(t, writer.Set(ctx, []byte("e"), 0))
	require.NoError(t, stop(ctx))
	require.NoError(t, writer.Set(ctx, []byte("f"), 0))
	// The watcher's own command after the writes: any event for it would
	// arrive before its response.
	require.NoError(t, watcher.Set(ctx, []byte("g"), 0))
	got := seen.get()
	require.Len(t, got, len(want)+1)
	assert.Equal(t, value.Changed{New: []byte("e")}, got[len(want)], "no event twice")
}

func TestSnapshotReschedulesExpiry(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ctx := &copycattest.FakeContext{Clock: t0, SessionsByID: map[uint64]runtime.Session{}}
	listener := &copycattest.FakeSession{SessionID: 7}
	ctx.SessionsByID[7] = listener
	res := value.ValueType.New()
	res.(runtime.Initializer).Init(ctx)
	_, err := res.Execute(&copycattest.FakeCommit{Caller: listener}, value.ValueListenOp, nil)
	require.NoError(t, err)
	_, err = res.Execute(&copycattest.FakeCommit{Clock: t0}, value.ValueSetOp, mustMarshal(t, &value.ValueSet{Value: []byte("x"), Ttl: 10 * time.Second}))
	require.NoError(t, err)

	var buf bytes.Buffer
	require.NoError(t, res.(runtime.Snapshotter).Snapshot(&buf))

	// Restored on another member: Restore, then Init with its context.
	ctx2 := &copycattest.FakeContext{Clock: t0.Add(4 * time.Second), SessionsByID: ctx.SessionsByID}
	restored := value.ValueType.New()
	require.NoError(t, restored.(runtime.Snapshotter).Restore(&buf))
	restored.(runtime.Initializer).Init(ctx2)
	require.Equal(t, 1, ctx2.Pending(), "Init schedules the restored deadline")
	next, _ := ctx2.NextDeadline()
	assert.Equal(t, t0.Add(10*time.Second), next)

	get := func() []byte {
		out, err := restored.Execute(&copycattest.FakeCommit{}, value.ValueGetOp, nil)
		require.NoError(t, err)
		var r value.ValueGetResult
		require.NoError(t, msgpack.Unmarshal(out, &r))
		return r.Value
	}
	ctx2.Advance(t0.Add(9 * time.Second))
	assert.Equal(t, []byte("x"), get())
	listener.Events = nil
	ctx2.Advance(t0.Add(10 * time.Second))
	assert.Nil(t, get())
	assert.Equal(t, []any{value.Changed{Old: []byte("x"), Expired: true}}, listener.Events,
		"the restored listener hears the expiry")

	// A session that ends stops listening.
	restored.(runtime.SessionListener).SessionClosed(listener, false)
	listener.Events = nil
	_, err = restored.Execute(&copycattest.FakeCommit{}, value.ValueSetOp, mustMarshal(t, &value.ValueSet{Value: []byte("y")}))
	require.NoError(t, err)
	assert.Empty(t, listener.Events)

	// Delete stops a pending expiry.
	_, err = restored.Execute(&copycattest.FakeCommit{Clock: ctx2.Clock}, value.ValueSetOp, mustMarshal(t, &value.ValueSet{Value: []byte("z"), Ttl: time.Second}))
	require.NoError(t, err)
	require.Equal(t, 1, ctx2.Pending())
	restored.(runtime.Deleter).Delete()
	assert.Equal(t, 0, ctx2.Pending())
}
