package group_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/group"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

func open(t *testing.T, c *copycattest.Cluster, name string, opts ...client.Option) (*client.Client, *group.GroupClient) {
	t.Helper()
	cli := c.Client(opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := group.OpenGroup(ctx, cli, name)
	require.NoError(t, err)
	return cli, g
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ids(ms []group.Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// recorder collects Changed events.
type recorder struct {
	mu     sync.Mutex
	events []group.Changed
}

func (r *recorder) add(e group.Changed) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) get() []group.Changed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]group.Changed(nil), r.events...)
}

func (r *recorder) count(n int) func() bool { return func() bool { return len(r.get()) >= n } }

func TestJoinLeaveMembers(t *testing.T) {
	c := copycattest.NewCluster(t, 3, group.GroupType)
	ctx := testCtx(t, 10*time.Second)
	cliA, a := open(t, c, "basic")
	cliB, b := open(t, c, "basic")

	ms, err := a.Members(ctx)
	require.NoError(t, err)
	assert.Empty(t, ms)

	ma, err := a.Join(ctx, "a", []byte("meta-a"))
	require.NoError(t, err)
	assert.Equal(t, cliA.SessionID(), ma.Session)
	mb, err := b.Join(ctx, "b", []byte("meta-b"))
	require.NoError(t, err)
	assert.Greater(t, mb.Index, ma.Index)

	ms, err = b.Members(ctx)
	require.NoError(t, err)
	assert.Equal(t, []group.Member{ma, mb}, ms)

	_, err = b.Join(ctx, "a", nil)
	assert.ErrorIs(t, err, group.ErrMemberExists, "another session's ID")
	assert.ErrorIs(t, b.Leave(ctx, "a"), group.ErrNotMember, "another session's member")
	assert.ErrorIs(t, b.Leave(ctx, "nobody"), group.ErrNotMember)

	// Joining again from the same session updates the metadata.
	ma2, err := a.Join(ctx, "a", []byte("meta-a2"))
	require.NoError(t, err)
	assert.Equal(t, []byte("meta-a2"), ma2.Metadata)
	ms, err = a.Members(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, ids(ms))

	require.NoError(t, a.Leave(ctx, "a"))
	ms, err = a.Members(ctx)
	require.NoError(t, err)
	assert.Equal(t, []group.Member{{ID: "b", Session: cliB.SessionID(), Metadata: []byte("meta-b"), Index: mb.Index}}, ms)

	// A session may hold several members.
	_, err = b.Join(ctx, "b2", nil)
	require.NoError(t, err)
	ms, err = a.Members(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "b2"}, ids(ms))
}

func TestWatchJoinLeave(t *testing.T) {
	c := copycattest.NewCluster(t, 3, group.GroupType)
	ctx := testCtx(t, 10*time.Second)
	_, obs := open(t, c, "watch")
	_, a := open(t, c, "watch")
	var r recorder
	stop, err := obs.Watch(ctx, r.add)
	require.NoError(t, err)

	_, err = a.Join(ctx, "a", []byte("1"))
	require.NoError(t, err)
	_, err = a.Join(ctx, "a", []byte("2"))
	require.NoError(t, err)
	_, err = a.Join(ctx, "x", nil)
	require.NoError(t, err)
	require.NoError(t, a.Leave(ctx, "a"))
	c.Eventually(10*time.Second, "four events", r.count(4))
	require.NoError(t, stop(ctx))

	// After stop, no more events.
	require.NoError(t, a.Leave(ctx, "x"))
	ms, err := obs.Members(ctx) // orders after the Leave's events, were there any
	require.NoError(t, err)
	assert.Empty(t, ms)

	ev := r.get()
	require.Len(t, ev, 4)
	kinds := []group.Kind{ev[0].Kind, ev[1].Kind, ev[2].Kind, ev[3].Kind}
	assert.Equal(t, []group.Kind{group.Joined, group.Updated, group.Joined, group.Left}, kinds)
	assert.Equal(t, []string{"a", "a", "x", "a"}, []string{ev[0].Member.ID, ev[1].Member.ID, ev[2].Member.ID, ev[3].Member.ID})
	assert.Equal(t, []byte("2"), ev[1].Member.Metadata)
	assert.False(t, ev[3].Expired)
	assert.False(t, ev[3].Closed)
}

func TestCutMemberLeaves(t *testing.T) {
	c := copycattest.NewCluster(t, 3, group.GroupType)
	ctx := testCtx(t, 30*time.Second)
	_, obs := open(t, c, "cut")
	cliA, a := open(t, c, "cut", client.WithSessionTimeout(500*time.Millisecond))
	var r recorder
	stop, err := obs.Watch(ctx, r.add)
	require.NoError(t, err)
	defer func() { _ = stop(ctx) }()

	_, err = a.Join(ctx, "a1", nil)
	require.NoError(t, err)
	_, err = a.Join(ctx, "a2", nil)
	require.NoError(t, err)
	_, err = obs.Join(ctx, "observer", nil)
	require.NoError(t, err)

	cutAt := time.Now()
	c.CutClient(cliA)
	c.Eventually(10*time.Second, "leave events", r.count(5))
	t.Logf("cut→leave event %v", time.Since(cutAt))
	ev := r.get()
	require.Len(t, ev, 5)
	for _, e := range ev[3:] {
		assert.Equal(t, group.Left, e.Kind)
		assert.True(t, e.Expired, "left by expiry")
		assert.Equal(t, cliA.SessionID(), e.Member.Session)
	}
	assert.Equal(t, []string{"a1", "a2"}, []string{ev[3].Member.ID, ev[4].Member.ID})
	ms, err := obs.Members(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"observer"}, ids(ms))
}

func TestClosedMemberLeaves(t *testing.T) {
	c := copycattest.NewCluster(t, 3, group.GroupType)
	ctx := testCtx(t, 10*time.Second)
	_, obs := open(t, c, "close")
	cliA, a := open(t, c, "close")
	var r recorder
	stop, err := obs.Watch(ctx, r.add)
	require.NoError(t, err)
	defer func() { _ = stop(ctx) }()
	_, err = a.Join(ctx, "a", nil)
	require.NoError(t, err)
	require.NoError(t, cliA.Close())
	c.Eventually(10*time.Second, "leave event", r.count(2))
	ev := r.get()
	assert.Equal(t, group.Left, ev[1].Kind)
	assert.True(t, ev[1].Closed)
	assert.False(t, ev[1].Expired)
}
