package dmap_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/dmap"
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
	c := copycattest.NewCluster(t, 3, dmap.MapType)
	m, err := dmap.OpenMap(ctx, c.Client(), "m")
	require.NoError(t, err)

	old, err := m.Put(ctx, "a", []byte("1"), 0)
	require.NoError(t, err)
	assert.Nil(t, old)
	old, err = m.Put(ctx, "a", []byte("2"), 0)
	require.NoError(t, err)
	assert.Equal(t, []byte("1"), old)
	v, err := m.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []byte("2"), v)
	v, err = m.Get(ctx, "missing", sequential)
	require.NoError(t, err)
	assert.Nil(t, v)

	ok, err := m.PutIfAbsent(ctx, "a", []byte("x"), 0)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = m.PutIfAbsent(ctx, "b", []byte("b1"), 0)
	require.NoError(t, err)
	assert.True(t, ok)

	ok, err = m.Replace(ctx, "nope", []byte("x"), 0)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = m.Replace(ctx, "b", []byte("b2"), 0)
	require.NoError(t, err)
	assert.True(t, ok)

	ok, err = m.CompareAndReplace(ctx, "b", []byte("wrong"), []byte("b3"), 0)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = m.CompareAndReplace(ctx, "b", []byte("b2"), []byte("b3"), 0)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = m.CompareAndReplace(ctx, "nope", nil, []byte("x"), 0)
	require.NoError(t, err)
	assert.False(t, ok, "a missing key is not replaced")

	has, err := m.ContainsKey(ctx, "b")
	require.NoError(t, err)
	assert.True(t, has)
	has, err = m.ContainsKey(ctx, "nope", client.WithConsistency(runtime.LinearizableLease))
	require.NoError(t, err)
	assert.False(t, has)
	n, err := m.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	ok, err = m.RemoveIfEquals(ctx, "b", []byte("wrong"))
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = m.RemoveIfEquals(ctx, "b", []byte("b3"))
	require.NoError(t, err)
	assert.True(t, ok)
	old, err = m.Remove(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []byte("2"), old)
	old, err = m.Remove(ctx, "a")
	require.NoError(t, err)
	assert.Nil(t, old)
	n, err = m.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)

	// An empty value is a value.
	_, err = m.Put(ctx, "empty", []byte{}, 0)
	require.NoError(t, err)
	has, err = m.ContainsKey(ctx, "empty")
	require.NoError(t, err)
	assert.True(t, has)

	for i := 0; i < 5; i++ {
		_, err := m.Put(ctx, fmt.Sprint(i), []byte{byte(i)}, 0)
		require.NoError(t, err)
	}
	require.NoError(t, m.Clear(ctx))
	n, err = m.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)

	_, err = m.Put(ctx, "a", []byte("x"), -time.Second)
	assert.ErrorIs(t, err, dmap.ErrNegativeTTL)
	_, err = m.PutIfAbsent(ctx, "a", []byte("x"), -time.Second)
	assert.ErrorIs(t, err, dmap.ErrNegativeTTL)
	_, err = m.Replace(ctx, "a", []byte("x"), -time.Second)
	assert.ErrorIs(t, err, dmap.ErrNegativeTTL)
	_, err = m.CompareAndReplace(ctx, "a", nil, []byte("x"), -time.Second)
	assert.ErrorIs(t, err, dmap.ErrNegativeTTL)
}

func TestPages(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, dmap.MapType)
	m, err := dmap.OpenMap(ctx, c.Client(), "pages")
	require.NoError(t, err)
	var want []string
	for _, k := range []string{"", "a", "b", "c", "d", "e", "f", "g"} {
		_, err := m.Put(ctx, k, []byte("v"+k), 0)
		require.NoError(t, err)
		want = append(want, k)
	}
	var keys []string
	var entries []dmap.Entry
	from, pages := "", 0
	for {
		kp, err := m.Keys(ctx, from, 3)
		require.NoError(t, err)
		ep, err := m.Entries(ctx, from, 3, sequential)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(kp.Keys), 3)
		assert.Equal(t, kp.More, ep.More)
		assert.Equal(t, kp.Next, ep.Next)
		keys = append(keys, kp.Keys...)
		entries = append(entries, ep.Entries...)
		pages++
		if !kp.More {
			break
		}
		from = kp.Next
	}
	assert.Equal(t, 3, pages)
	assert.Equal(t, want, keys, "every key once, in order, the empty key first")
	require.Len(t, entries, len(want))
	for i, e := range entries {
		assert.Equal(t, want[i], e.Key)
		assert.Equal(t, []byte("v"+want[i]), e.Value)
	}
	// A limit out of range is MaxPage.
	kp, err := m.Keys(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, want, kp.Keys)
	assert.False(t, kp.More)
	kp, err = m.Keys(ctx, "d", -1)
	require.NoError(t, err)
	assert.Equal(t, []string{"d", "e", "f", "g"}, kp.Keys)
}

type recorder struct {
	mu     sync.Mutex
	events []dmap.Changed
}

func (r *recorder) add(e dmap.Changed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) get() []dmap.Changed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dmap.Changed(nil), r.events...)
}

func TestEvents(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, dmap.MapType)
	all, err := dmap.OpenMap(ctx, c.Client(), "ev")
	require.NoError(t, err)
	onlyA, err := dmap.OpenMap(ctx, c.Client(), "ev")
	require.NoError(t, err)
	writer, err := dmap.OpenMap(ctx, c.Client(), "ev")
	require.NoError(t, err)

	var seenAll, seenA, unheard recorder
	stopAll, err := all.Watch(ctx, nil, seenAll.add)
	require.NoError(t, err)
	stopA, err := onlyA.Watch(ctx, []string{"a"}, seenA.add)
	require.NoError(t, err)
	cancel := writer.OnChanged(unheard.add)
	defer cancel()

	_, err = writer.Put(ctx, "a", []byte("1"), 0)
	require.NoError(t, err)
	_, err = writer.Put(ctx, "b", []byte("1"), 0)
	require.NoError(t, err)
	_, err = writer.Put(ctx, "a", []byte("1"), 0) // same value: no event
	require.NoError(t, err)
	_, err = writer.Put(ctx, "a", []byte("2"), 0)
	require.NoError(t, err)
	_, err = writer.Remove(ctx, "b")
	require.NoError(t, err)
	_, err = writer.Remove(ctx, "b") // nothing to remove: no event
	require.NoError(t, err)
	_, err = writer.Put(ctx, "c", []byte("3"), 200*time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, writer.Clear(ctx))

	wantAll := []dmap.Changed{
		{Kind: dmap.Inserted, Key: "a", New: []byte("1")},
		{Kind: dmap.Inserted, Key: "b", New: []byte("1")},
		{Kind: dmap.Updated, Key: "a", Old: []byte("1"), New: []byte("2")},
		{Kind: dmap.Removed, Key: "b", Old: []byte("1")},
		{Kind: dmap.Inserted, Key: "c", New: []byte("3")},
		{Kind: dmap.Removed, Key: "a", Old: []byte("2")},
		{Kind: dmap.Removed, Key: "c", Old: []byte("3")},
	}
	wantA := []dmap.Changed{wantAll[0], wantAll[2], wantAll[5]}
	c.Eventually(10*time.Second, "events", func() bool {
		return len(seenAll.get()) >= len(wantAll) && len(seenA.get()) >= len(wantA)
	})
	assert.Equal(t, wantAll, seenAll.get())
	assert.Equal(t, wantA, seenA.get(), "filtered by key")
	assert.Empty(t, unheard.get(), "a session that did not Listen hears nothing")

	// Expiry is a removal event.
	_, err = writer.Put(ctx, "a", []byte("ttl"), 200*time.Millisecond)
	require.NoError(t, err)
	c.Eventually(10*time.Second, "expiry event", func() bool { return len(seenA.get()) >= len(wantA)+2 })
	assert.Equal(t, []dmap.Changed{
		{Kind: dmap.Inserted, Key: "a", New: []byte("ttl")},
		{Kind: dmap.Removed, Key: "a", Old: []byte("ttl"), Expired: true},
	}, seenA.get()[len(wantA):])

	// A new Listen replaces the filter; after stop nothing arrives.
	require.NoError(t, onlyA.Listen(ctx, []string{"z"}))
	_, err = writer.Put(ctx, "a", []byte("after"), 0)
	require.NoError(t, err)
	require.NoError(t, stopAll(ctx))
	require.NoError(t, stopA(ctx))
	_, err = writer.Put(ctx, "z", []byte("after"), 0)
	require.NoError(t, err)
	// Their own commands after the writes: events for them would be first.
	_, err = all.Put(ctx, "own", nil, 0)
	require.NoError(t, err)
	_, err = onlyA.Put(ctx, "own2", nil, 0)
	require.NoError(t, err)
	assert.Len(t, seenA.get(), len(wantA)+2, "filter moved to z, then stopped")
	got := seenAll.get()
	assert.Equal(t, dmap.Changed{Kind: dmap.Inserted, Key: "a", New: []byte("after")}, got[len(got)-1])
	assert.Empty(t, unheard.get())
}

// TestTTL watches a key expire through the client at both consistency
// levels and on every member's own state, at the same state machine time.
func TestTTL(t *testing.T) {
	ctx := testContext(t)
	var p copycattest.Probe
	c := copycattest.NewCluster(t, 3, p.Wrap(dmap.MapType))
	m, err := dmap.OpenMap(ctx, c.Client(), "ttl")
	require.NoError(t, err)
	_, err = m.Put(ctx, "k", []byte("v"), 400*time.Millisecond)
	require.NoError(t, err)
	_, err = m.Put(ctx, "stays", []byte("v"), 0)
	require.NoError(t, err)
	ok, err := m.PutIfAbsent(ctx, "short", []byte("v"), 200*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = m.Replace(ctx, "short", []byte("w"), 0) // now permanent
	require.NoError(t, err)
	require.True(t, ok)

	has, err := m.ContainsKey(ctx, "k", linearizable)
	require.NoError(t, err)
	assert.True(t, has)
	c.Eventually(10*time.Second, "expiry seen by a sequential query", func() bool {
		v, err := m.Get(ctx, "k", sequential)
		return err == nil && v == nil
	})
	has, err = m.ContainsKey(ctx, "k", linearizable)
	require.NoError(t, err)
	assert.False(t, has)
	n, err := m.Size(ctx, linearizable)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "short was made permanent by Replace")
	checkExpiredEverywhere(t, c, &p, "ttl", 3, []string{"short", "stays"})
}

// TestTTLLeaderCrash crashes the leader right after it accepted a put with a
// time to live: the key still expires under the next leader, and the old
// leader, restarted, expires it at the same log time.
func TestTTLLeaderCrash(t *testing.T) {
	ctx := testContext(t)
	var p copycattest.Probe
	c := copycattest.NewCluster(t, 3, p.Wrap(dmap.MapType))
	m, err := dmap.OpenMap(ctx, c.Client(), "crash")
	require.NoError(t, err)
	_, err = m.Put(ctx, "k", []byte("v"), 500*time.Millisecond)
	require.NoError(t, err)
	old := c.Leader()
	c.Crash(old)
	c.Eventually(15*time.Second, "expiry under the new leader", func() bool {
		has, err := m.ContainsKey(ctx, "k", linearizable)
		return err == nil && !has
	})
	assert.NotEqual(t, old, c.Leader())
	v, err := m.Get(ctx, "k", sequential)
	require.NoError(t, err)
	assert.Nil(t, v)
	c.Restart(old)
	checkExpiredEverywhere(t, c, &p, "crash", 3, nil)
}

// checkExpiredEverywhere waits until at least n instances named name (one
// per running member; a crashed member's instance stops where it crashed)
// have fired a timer, checks that each holds exactly the keys want, and
// that every instance that fired did so at the same state machine times.
func checkExpiredEverywhere(t *testing.T, c *copycattest.Cluster, p *copycattest.Probe, name string, n int, want []string) {
	t.Helper()
	var fired []*copycattest.Instance
	c.Eventually(10*time.Second, "every member expires the key", func() bool {
		fired = fired[:0]
		for _, r := range p.Instances(name) {
			if len(r.Firings()) > 0 {
				fired = append(fired, r)
			}
		}
		return len(fired) >= n
	})
	first := fired[0].Firings()
	for _, r := range fired {
		var page dmap.MapKeysResult
		r.Query(t, dmap.MapKeysOp, &dmap.MapKeys{}, &page)
		assert.Equal(t, want, page.Value.Keys)
		assert.Equal(t, first, r.Firings(), "timers fire at the same log time on every member")
	}
}

type user struct {
	Name  string
	Tags  map[string]int
	Admin bool
}

func TestTyped(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, dmap.MapType)
	users, err := dmap.OpenTyped[user](ctx, c.Client(), "users")
	require.NoError(t, err)
	var mu sync.Mutex
	var events []dmap.TypedChanged[user]
	stop, err := users.Watch(ctx, nil, func(e dmap.TypedChanged[user]) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	require.NoError(t, err)

	ada := user{Name: "Ada", Tags: map[string]int{"x": 1, "y": 2, "z": 3}}
	_, had, err := users.Put(ctx, "ada", ada, 0)
	require.NoError(t, err)
	assert.False(t, had)
	got, ok, err := users.Get(ctx, "ada")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, ada, got)
	_, ok, err = users.Get(ctx, "nobody", sequential)
	require.NoError(t, err)
	assert.False(t, ok)

	admin := ada
	admin.Admin = true
	// Equal values with maps encode equally, so the comparison holds.
	same := user{Name: "Ada", Tags: map[string]int{"z": 3, "y": 2, "x": 1}}
	ok, err = users.CompareAndReplace(ctx, "ada", same, admin, 0)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = users.PutIfAbsent(ctx, "ada", ada, 0)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = users.Replace(ctx, "bob", ada, 0)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, users.Set(ctx, "bob", user{Name: "Bob"}, 0))
	prev, had, err := users.Put(ctx, "bob", user{Name: "Bobby"}, 0)
	require.NoError(t, err)
	assert.True(t, had)
	assert.Equal(t, "Bob", prev.Name)

	page, err := users.Entries(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	assert.Equal(t, dmap.TypedEntry[user]{Key: "ada", Value: admin}, page.Entries[0])
	assert.Equal(t, "Bobby", page.Entries[1].Value.Name)
	kp, err := users.Keys(ctx, "b", 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, kp.Keys)
	n, err := users.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	has, err := users.ContainsKey(ctx, "bob")
	require.NoError(t, err)
	assert.True(t, has)

	ok, err = users.RemoveIfEquals(ctx, "bob", user{Name: "Bob"})
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = users.RemoveIfEquals(ctx, "bob", user{Name: "Bobby"})
	require.NoError(t, err)
	assert.True(t, ok)
	removed, had, err := users.Remove(ctx, "ada")
	require.NoError(t, err)
	assert.True(t, had)
	assert.Equal(t, admin, removed)
	require.NoError(t, users.Clear(ctx))
	require.NoError(t, stop(ctx))

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 6)
	assert.Equal(t, dmap.TypedChanged[user]{Kind: dmap.Inserted, Key: "ada", New: ada}, events[0])
	assert.Equal(t, dmap.TypedChanged[user]{Kind: dmap.Updated, Key: "ada", Old: ada, New: admin}, events[1])
	assert.Equal(t, dmap.Removed, events[5].Kind)
	assert.Equal(t, admin, events[5].Old)
	assert.Zero(t, users.DroppedEvents())
	assert.NotNil(t, users.Untyped())
}
