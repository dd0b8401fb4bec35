package extend_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/examples/extend"
	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTrackedLock drives the embedded lock's operations through the
// generated client and reads the history they leave.
func TestTrackedLock(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, extend.TrackedLockType)
	a, err := extend.OpenTrackedLock(ctx, c.Client(), "l")
	require.NoError(t, err)
	bCli := c.Client(client.WithSessionTimeout(copycattest.MinSessionTimeout))
	b, err := extend.OpenTrackedLock(ctx, bCli, "l")
	require.NoError(t, err)
	granted := make(chan lock.Granted, 1)
	defer b.OnGranted(func(e lock.Granted) { granted <- e })()

	hist, err := a.History(ctx)
	require.NoError(t, err)
	assert.Empty(t, hist)

	t1, err := a.Acquire(ctx, -1)
	require.NoError(t, err)
	require.True(t, t1.Granted)
	t2, err := b.Acquire(ctx, -1)
	require.NoError(t, err)
	require.True(t, t2.Queued)
	tried, err := b.Acquire(ctx, 0) // try-only, refused: no hold
	require.NoError(t, err)
	assert.False(t, tried.Granted || tried.Queued)
	info, err := a.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, t1.Token, info.Token)
	assert.Equal(t, 1, info.Waiters)

	hist, err = a.History(ctx)
	require.NoError(t, err)
	require.Len(t, hist, 1)
	assert.Equal(t, t1.Token, hist[0].Token)
	assert.Equal(t, info.Session, hist[0].Session)
	assert.True(t, hist[0].To.IsZero(), "held")

	assert.ErrorIs(t, b.Release(ctx, t1.Token), lock.ErrNotHolder, "not b's to release")
	require.NoError(t, a.Release(ctx, t1.Token))
	assert.Equal(t, lock.Granted{Token: t2.Token}, <-granted)

	hist, err = a.History(ctx, client.WithConsistency(runtime.Sequential))
	require.NoError(t, err)
	require.Len(t, hist, 2)
	assert.False(t, hist[0].To.IsZero())
	assert.False(t, hist[0].To.Before(hist[0].From))
	assert.Equal(t, t2.Token, hist[1].Token)
	assert.Equal(t, hist[0].To, hist[1].From, "granted as the first hold ended")
	assert.True(t, hist[1].To.IsZero())

	// b's session dies: its hold ends at the log time of the expiry.
	c.CutClient(bCli)
	c.Eventually(10*time.Second, "b's hold ended", func() bool {
		h, err := a.History(ctx)
		return err == nil && len(h) == 2 && !h[1].To.IsZero()
	})
	info, err = a.Holder(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Token)
	t3, err := a.Acquire(ctx, -1)
	require.NoError(t, err)
	assert.True(t, t3.Granted)
	require.NoError(t, a.Release(ctx, t3.Token))
	hist, err = a.History(ctx)
	require.NoError(t, err)
	require.Len(t, hist, 3)
	for i := 1; i < len(hist); i++ {
		assert.Greater(t, hist[i].Token, hist[i-1].Token)
		assert.False(t, hist[i].From.Before(hist[i-1].To))
	}
}

// TestTrackedLockLeaderCrash: the next leader answers with the same
// history.
func TestTrackedLockLeaderCrash(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, extend.TrackedLockType)
	l, err := extend.OpenTrackedLock(ctx, c.Client(), "crash")
	require.NoError(t, err)
	tk, err := l.Acquire(ctx, -1)
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx, tk.Token))
	before, err := l.History(ctx)
	require.NoError(t, err)
	old := c.Leader()
	c.Crash(old)
	after, err := l.History(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	c.Restart(old)
}

// TestVersionedMap drives the embedded map's operations and the versions
// they give.
func TestVersionedMap(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, extend.VersionedMapType)
	m, err := extend.OpenVersionedMap(ctx, c.Client(), "m")
	require.NoError(t, err)
	var mu sync.Mutex
	var events []dmap.Changed
	defer m.OnChanged(func(e dmap.Changed) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})()
	require.NoError(t, m.Listen(ctx, nil))

	version := func(key string) uint64 {
		t.Helper()
		v, err := m.Version(ctx, key)
		require.NoError(t, err)
		return v
	}
	assert.Zero(t, version("a"))
	_, err = m.Put(ctx, "a", []byte("1"), 0)
	require.NoError(t, err)
	v1 := version("a")
	assert.NotZero(t, v1)
	old, err := m.Put(ctx, "a", []byte("1"), 0) // same value: still a write
	require.NoError(t, err)
	assert.Equal(t, []byte("1"), old)
	v2 := version("a")
	assert.Greater(t, v2, v1)

	ok, err := m.PutIfAbsent(ctx, "a", []byte("x"), 0)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, v2, version("a"), "no write, no new version")
	ok, err = m.Replace(ctx, "a", []byte("2"), 0)
	require.NoError(t, err)
	assert.True(t, ok)
	v3 := version("a")
	assert.Greater(t, v3, v2)
	ok, err = m.CompareAndReplace(ctx, "a", []byte("nope"), []byte("3"), 0)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, v3, version("a"))
	ok, err = m.CompareAndReplace(ctx, "a", []byte("2"), []byte("3"), 0)
	require.NoError(t, err)
	assert.True(t, ok)
	v4 := version("a")
	assert.Greater(t, v4, v3)
	_, err = m.Put(ctx, "a", nil, -time.Second)
	assert.ErrorIs(t, err, dmap.ErrNegativeTTL)
	assert.Equal(t, v4, version("a"))

	// The built-in queries, through the generated client.
	got, err := m.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []byte("3"), got)
	ok, err = m.PutIfAbsent(ctx, "b", []byte("b"), 0)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Greater(t, version("b"), v4)
	page, err := m.Entries(ctx, "", 10)
	require.NoError(t, err)
	assert.Equal(t, []dmap.Entry{{Key: "a", Value: []byte("3")}, {Key: "b", Value: []byte("b")}}, page.Entries)
	n, err := m.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// Removal and clearing forget versions; a new value gets a newer one.
	_, err = m.Remove(ctx, "a")
	require.NoError(t, err)
	assert.Zero(t, version("a"))
	ok, err = m.RemoveIfEquals(ctx, "b", []byte("b"))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Zero(t, version("b"))
	_, err = m.Put(ctx, "a", []byte("again"), 0)
	require.NoError(t, err)
	assert.Greater(t, version("a"), v4)
	require.NoError(t, m.Clear(ctx))
	assert.Zero(t, version("a"))

	// Expiry forgets the version too.
	_, err = m.Put(ctx, "t", []byte("ttl"), 200*time.Millisecond)
	require.NoError(t, err)
	assert.NotZero(t, version("t"))
	c.Eventually(10*time.Second, "expired", func() bool {
		v, err := m.Version(ctx, "t")
		return err == nil && v == 0
	})
	has, err := m.ContainsKey(ctx, "t")
	require.NoError(t, err)
	assert.False(t, has)

	// The map's events still flow.
	require.NoError(t, m.Unlisten(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, events)
	assert.Equal(t, dmap.Changed{Kind: dmap.Inserted, Key: "a", New: []byte("1")}, events[0])
	assert.Equal(t, dmap.Changed{Kind: dmap.Removed, Key: "t", Old: []byte("ttl"), Expired: true}, events[len(events)-1])
}

// TestVersionAcrossLeaderCrash: versions are log indexes, so they keep
// increasing under the next leader.
func TestVersionAcrossLeaderCrash(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, extend.VersionedMapType)
	m, err := extend.OpenVersionedMap(ctx, c.Client(), "crash")
	require.NoError(t, err)
	_, err = m.Put(ctx, "k", []byte("1"), 0)
	require.NoError(t, err)
	v1, err := m.Version(ctx, "k")
	require.NoError(t, err)
	old := c.Leader()
	c.Crash(old)
	_, err = m.Put(ctx, "k", []byte("2"), 0)
	require.NoError(t, err)
	v2, err := m.Version(ctx, "k")
	require.NoError(t, err)
	assert.Greater(t, v2, v1)
	c.Restart(old)
}
