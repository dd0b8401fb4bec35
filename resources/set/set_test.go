package set_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/set"
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
	c := copycattest.NewCluster(t, 3, set.SetType)
	s, err := set.OpenSet(ctx, c.Client(), "s")
	require.NoError(t, err)

	added, err := s.Add(ctx, "a", 0)
	require.NoError(t, err)
	assert.True(t, added)
	added, err = s.Add(ctx, "a", 0)
	require.NoError(t, err)
	assert.False(t, added, "already there")
	added, err = s.Add(ctx, "b", 0)
	require.NoError(t, err)
	assert.True(t, added)

	ok, err := s.Contains(ctx, "a")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.Contains(ctx, "nope", sequential)
	require.NoError(t, err)
	assert.False(t, ok)
	n, err := s.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	removed, err := s.Remove(ctx, "a")
	require.NoError(t, err)
	assert.True(t, removed)
	removed, err = s.Remove(ctx, "a")
	require.NoError(t, err)
	assert.False(t, removed)
	n, err = s.Size(ctx, client.WithConsistency(runtime.LinearizableLease))
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// The empty string is a member like any other.
	added, err = s.Add(ctx, "", 0)
	require.NoError(t, err)
	assert.True(t, added)
	ok, err = s.Contains(ctx, "")
	require.NoError(t, err)
	assert.True(t, ok)

	require.NoError(t, s.Clear(ctx))
	n, err = s.Size(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)

	_, err = s.Add(ctx, "x", -time.Second)
	assert.ErrorIs(t, err, set.ErrNegativeTTL)
	ok, err = s.Contains(ctx, "x")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestMembersPages(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, set.SetType)
	s, err := set.OpenSet(ctx, c.Client(), "pages")
	require.NoError(t, err)
	want := []string{"", "a", "b", "c", "d", "e", "f", "g"}
	for _, v := range []string{"g", "a", "", "f", "b", "e", "c", "d"} {
		_, err := s.Add(ctx, v, 0)
		require.NoError(t, err)
	}
	var got []string
	from, pages := "", 0
	for {
		p, err := s.Members(ctx, from, 3, sequential)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(p.Members), 3)
		got = append(got, p.Members...)
		pages++
		if !p.More {
			break
		}
		from = p.Next
	}
	assert.Equal(t, 3, pages)
	assert.Equal(t, want, got, "every member once, in order")
	p, err := s.Members(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, want, p.Members, "a limit out of range is MaxPage")
	assert.False(t, p.More)
	p, err = s.Members(ctx, "e", -1)
	require.NoError(t, err)
	assert.Equal(t, []string{"e", "f", "g"}, p.Members)
}

type recorder struct {
	mu     sync.Mutex
	events []set.Changed
}

func (r *recorder) add(e set.Changed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) get() []set.Changed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]set.Changed(nil), r.events...)
}

func TestEvents(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, set.SetType)
	watcher, err := set.OpenSet(ctx, c.Client(), "ev")
	require.NoError(t, err)
	writer, err := set.OpenSet(ctx, c.Client(), "ev")
	require.NoError(t, err)

	var seen, unheard recorder
	stop, err := watcher.Watch(ctx, seen.add)
	require.NoError(t, err)
	cancel := writer.OnChanged(unheard.add)
	defer cancel()

	for _, step := range []func() error{
		func() error { _, err := writer.Add(ctx, "a", 0); return err },
		func() error { _, err := writer.Add(ctx, "a", 0); return err }, // no event
		func() error { _, err := writer.Add(ctx, "b", 0); return err },
		func() error { _, err := writer.Remove(ctx, "a"); return err },
		func() error { _, err := writer.Remove(ctx, "a"); return err }, // no event
		func() error { _, err := writer.Add(ctx, "c", 0); return err },
		func() error { return writer.Clear(ctx) },
	} {
		require.NoError(t, step())
	}
	want := []set.Changed{
		{Kind: set.Added, Member: "a"},
		{Kind: set.Added, Member: "b"},
		{Kind: set.Removed, Member: "a"},
		{Kind: set.Added, Member: "c"},
		{Kind: set.Removed, Member: "b"},
		{Kind: set.Removed, Member: "c"},
	}
	// The watcher's own command after the writes: their events come first.
	_, err = watcher.Size(ctx)
	require.NoError(t, err)
	require.NoError(t, watcher.Listen(ctx))
	assert.Equal(t, want, seen.get())

	require.NoError(t, stop(ctx))
	_, err = writer.Add(ctx, "after", 0)
	require.NoError(t, err)
	_, err = watcher.Add(ctx, "own", 0)
	require.NoError(t, err)
	assert.Equal(t, want, seen.get(), "nothing after stop")
	assert.Empty(t, unheard.get(), "a session that did not Listen hears nothing")
}

// TestTTL adds members with times to live: they leave at the same log time
// on every member, with a Removed event marked Expired; a re-Add without a
// ttl makes a member permanent.
func TestTTL(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, set.SetType)
	s, err := set.OpenSet(ctx, c.Client(), "ttl")
	require.NoError(t, err)
	var seen recorder
	stop, err := s.Watch(ctx, seen.add)
	require.NoError(t, err)
	defer func() { _ = stop(ctx) }()

	_, err = s.Add(ctx, "k", 300*time.Millisecond)
	require.NoError(t, err)
	_, err = s.Add(ctx, "kept", 200*time.Millisecond)
	require.NoError(t, err)
	added, err := s.Add(ctx, "kept", 0) // now permanent
	require.NoError(t, err)
	assert.False(t, added)
	ok, err := s.Contains(ctx, "k", linearizable)
	require.NoError(t, err)
	assert.True(t, ok)

	c.Eventually(10*time.Second, "expiry event", func() bool { return len(seen.get()) >= 3 })
	assert.Equal(t, []set.Changed{
		{Kind: set.Added, Member: "k"},
		{Kind: set.Added, Member: "kept"},
		{Kind: set.Removed, Member: "k", Expired: true},
	}, seen.get())
	ok, err = s.Contains(ctx, "k", linearizable)
	require.NoError(t, err)
	assert.False(t, ok)
	p, err := s.Members(ctx, "", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"kept"}, p.Members)
	// Every member, including followers, reached the same state.
	c.Eventually(10*time.Second, "sequential reads agree", func() bool {
		ok, err := s.Contains(ctx, "k", sequential)
		return err == nil && !ok
	})
}

// TestTTLLeaderCrash: a member added with a ttl still expires under the
// next leader.
func TestTTLLeaderCrash(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, set.SetType)
	s, err := set.OpenSet(ctx, c.Client(), "crash")
	require.NoError(t, err)
	_, err = s.Add(ctx, "k", 500*time.Millisecond)
	require.NoError(t, err)
	old := c.Leader()
	c.Crash(old)
	c.Eventually(15*time.Second, "expiry under the new leader", func() bool {
		ok, err := s.Contains(ctx, "k", linearizable)
		return err == nil && !ok
	})
	c.Restart(old)
}

func TestManyMembers(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, set.SetType)
	s, err := set.OpenSet(ctx, c.Client(), "many")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				_, err := s.Add(ctx, fmt.Sprintf("%d-%02d", w, i), 0)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	n, err := s.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 100, n)
}
