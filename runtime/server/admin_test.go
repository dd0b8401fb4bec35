package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
	"github.com/copycat-go/copycat/runtime/internal/counter"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/raft"
)

// dialAdmin connects an Admin to the in-memory members at addrs.
func dialAdmin(t *testing.T, c *copycattest.Cluster, addrs ...string) *client.Admin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := client.DialAdmin(ctx, addrs, client.WithClusterID(copycattest.ClusterID),
		client.WithDialer(func(_ context.Context, addr string) (net.Conn, error) { return c.Dial(addr) }),
		client.WithBackoff(2*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

func follower(c *copycattest.Cluster, lead uint64) uint64 {
	for _, id := range c.IDs() {
		if id != lead {
			return id
		}
	}
	return 0
}

// Every member answers status from its own view; only the leader's carries
// replication progress. Sessions and resources are counted.
func TestAdmin_StatusFromEveryMember(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	cli := c.Client()
	_, err := counter.Open(ctx, cli, "hits")
	require.NoError(t, err)
	lead := c.WaitLeader(10 * time.Second)
	a := dialAdmin(t, c, c.Addrs()...)

	c.Eventually(10*time.Second, "every member applied the session and the resource", func() bool {
		for _, id := range c.IDs() {
			st, err := a.MemberStatus(ctx, c.Member(id).Addr)
			if err != nil || st.Sessions != 1 || st.Resources != 1 {
				return false
			}
		}
		return true
	})
	for _, id := range c.IDs() {
		st, err := a.MemberStatus(ctx, c.Member(id).Addr)
		require.NoError(t, err)
		assert.Equal(t, id, st.ID)
		assert.Equal(t, c.Member(id).Addr, st.Addr)
		assert.Equal(t, lead, st.Leader, "member %d", id)
		assert.Equal(t, c.Member(lead).Addr, st.LeaderAddr)
		assert.GreaterOrEqual(t, st.Commit, st.Applied)
		assert.GreaterOrEqual(t, st.Applied, uint64(3), "bootstrap, no-op, session, resource")
		require.Len(t, st.Members, 3)
		for _, m := range st.Members {
			assert.Equal(t, raft.Active, m.Type)
			assert.Equal(t, c.Member(m.ID).Addr, m.Addr)
			if id == lead {
				assert.Equal(t, raft.StateLeader, st.Role)
				if assert.NotNil(t, m.Progress, "the leader reports member %d's progress", m.ID) {
					assert.GreaterOrEqual(t, m.Progress.Match, uint64(1))
					assert.Greater(t, m.Progress.Next, m.Progress.Match)
				}
			} else {
				assert.Equal(t, raft.StateFollower, st.Role)
				assert.Nil(t, m.Progress, "a follower knows no progress")
			}
		}
	}

	// Status through any member shows the leader's view.
	a = dialAdmin(t, c, c.Member(follower(c, lead)).Addr)
	st, err := a.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, lead, st.ID)
	assert.Equal(t, raft.StateLeader, st.Role)
}

// A membership change sent to a follower is redirected to the leader, as a
// command is; status is not.
func TestAdmin_FollowerRedirects(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	lead := c.WaitLeader(10 * time.Second)
	f := follower(c, lead)
	r := dialRaw(t, c, f)
	resp := r.callOnce(&protocol.Message{Type: protocol.AdminDemote, TimeoutNs: int64(5 * time.Second),
		Args: protocol.EncodeAdminRequest(protocol.AdminRequest{Member: lead})})
	require.Equal(t, protocol.NotLeader, resp.Status)
	assert.Equal(t, c.Member(lead).Addr, resp.Leader)
	assert.ElementsMatch(t, c.Addrs(), resp.Members)

	resp = r.callOnce(&protocol.Message{Type: protocol.AdminStatus})
	require.Equal(t, protocol.OK, resp.Status)
	st, err := protocol.DecodeClusterStatus(resp.Result)
	require.NoError(t, err)
	assert.Equal(t, f, st.ID)

	// The Admin follows the redirect: the demotion happens on the leader.
	ctx := ctxT(t, 20*time.Second)
	a := dialAdmin(t, c, c.Member(f).Addr)
	other := follower(c, lead)
	for _, id := range c.IDs() {
		if id != lead && id != f {
			other = id
		}
	}
	require.NoError(t, a.DemoteMember(ctx, other))
	st, err = a.Status(ctx)
	require.NoError(t, err)
	m, ok := st.Member(other)
	require.True(t, ok)
	assert.Equal(t, raft.Passive, m.Type)
}

// A malformed admin request is refused as such, and closes nothing.
func TestAdmin_MalformedRequest(t *testing.T) {
	c := copycattest.NewCluster(t, 1, counter.Type)
	r := dialRaw(t, c, 1)
	resp := r.callOnce(&protocol.Message{Type: protocol.AdminAdd, Args: []byte{0xc1}})
	require.Equal(t, protocol.Failed, resp.Status)
	assert.ErrorIs(t, protocol.AdminErrorOf(resp.Err), runtime.ErrBadRequest)
	resp = r.callOnce(&protocol.Message{Type: protocol.AdminStatus})
	assert.Equal(t, protocol.OK, resp.Status, "the connection still serves")
}

// Promoting a member that has not caught up is refused with a typed error
// that says how far behind it is; the leader does not wait.
func TestAdmin_PromoteNotCaughtUp(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	a := dialAdmin(t, c, c.Addrs()...)
	// Member 9 is never started: it cannot catch up.
	require.NoError(t, a.AddMember(ctx, 9, "member-9", raft.Passive))
	began := time.Now()
	err := a.PromoteMember(ctx, 9)
	require.ErrorIs(t, err, client.ErrNotCaughtUp)
	assert.Contains(t, err.Error(), "member 9 has 0 of the leader's")
	assert.Less(t, time.Since(began), 5*time.Second, "answered at once, not retried until ctx ends")

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err = a.PromoteWhenCaughtUp(short, 9)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, client.ErrNotCaughtUp, "the last refusal is kept")

	st, err := a.Status(ctx)
	require.NoError(t, err)
	m, ok := st.Member(9)
	require.True(t, ok)
	assert.Equal(t, raft.Passive, m.Type)
	require.NoError(t, a.RemoveMember(ctx, 9))
}

// Removing the leader makes it step down; the others elect a new one and
// carry on with two members.
func TestAdmin_RemoveLeader(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	old := c.WaitLeader(10 * time.Second)
	a := dialAdmin(t, c, c.Addrs()...)
	require.NoError(t, a.RemoveMember(ctx, old))

	var lead uint64
	c.Eventually(10*time.Second, "a new leader", func() bool {
		lead = c.Leader()
		return lead != 0 && lead != old
	})
	st, err := a.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, lead, st.Leader)
	require.Len(t, st.Members, 2)
	_, ok := st.Member(old)
	assert.False(t, ok, "the old leader is gone from the configuration")
	assert.NotEqual(t, raft.StateLeader, c.Member(old).Server().Status().SoftState.State)

	// The cluster still commits.
	cli := c.Client()
	ctr, err := counter.Open(ctx, cli, "after")
	require.NoError(t, err)
	v, err := ctr.Add(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(2), v)
}

// A member cut off from the others answers status itself and shows it knows
// no leader, while the majority keeps one; with no majority anywhere, a
// change fails with runtime.ErrNoLeader once ctx ends.
func TestAdmin_PartitionedMemberKnowsNoLeader(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	lead := c.WaitLeader(10 * time.Second)
	cut := follower(c, lead)
	c.Isolate(cut)
	a := dialAdmin(t, c, c.Member(cut).Addr)
	c.Eventually(10*time.Second, "the cut-off member to lose its leader", func() bool {
		st, err := a.MemberStatus(ctx, c.Member(cut).Addr)
		require.NoError(t, err)
		return st.Leader == 0 && st.LeaderAddr == "" && st.Role != raft.StateLeader
	})
	lst, err := a.MemberStatus(ctx, c.Member(lead).Addr)
	require.NoError(t, err)
	assert.Equal(t, lead, lst.Leader, "the majority keeps its leader")

	// Status through the cut-off member finds the leader through the
	// addresses it learns, as an operator would want.
	st, err := a.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, lead, st.ID)

	// No majority anywhere: no leader, and changes say so.
	c.Partition([]uint64{1}, []uint64{2}, []uint64{3})
	c.Eventually(10*time.Second, "every member to lose the leader", func() bool {
		for _, id := range c.IDs() {
			st, err := a.MemberStatus(ctx, c.Member(id).Addr)
			require.NoError(t, err)
			if st.Leader != 0 {
				return false
			}
		}
		return true
	})
	st, err = a.Status(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Leader)
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err = a.DemoteMember(short, lead)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, runtime.ErrNoLeader)

	c.Heal()
	c.Eventually(10*time.Second, "the member to learn the leader again", func() bool {
		st, err := a.MemberStatus(ctx, c.Member(cut).Addr)
		require.NoError(t, err)
		return st.Leader != 0
	})
}

// Leadership moves to a named voter, or to any; refusals are typed.
func TestAdmin_TransferLeadership(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	lead := c.WaitLeader(10 * time.Second)
	a := dialAdmin(t, c, c.Addrs()...)
	to := follower(c, lead)
	require.NoError(t, a.TransferLeadership(ctx, to))
	c.Eventually(5*time.Second, "member to lead", func() bool { return c.Leader() == to })

	require.NoError(t, a.TransferLeadership(ctx, to), "naming the leader does nothing")
	assert.Equal(t, to, c.Leader())

	require.NoError(t, a.TransferLeadership(ctx, 0))
	c.Eventually(5*time.Second, "another member to lead", func() bool {
		l := c.Leader()
		return l != 0 && l != to
	})

	assert.ErrorIs(t, a.TransferLeadership(ctx, 42), client.ErrUnknownMember)
	require.NoError(t, a.DemoteMember(ctx, to))
	err := a.TransferLeadership(ctx, to)
	assert.ErrorIs(t, err, client.ErrInvalidTransfer)
	assert.Contains(t, err.Error(), "only ACTIVE members can lead")
}

// A transfer to a voter that cannot take over (it is cut off) ends with
// ErrTimeout after a few election timeouts, not at the client's deadline;
// the leader keeps leading.
func TestAdmin_TransferTimesOut(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	lead := c.WaitLeader(10 * time.Second)
	cut := follower(c, lead)
	c.Isolate(cut)
	a := dialAdmin(t, c, c.Member(lead).Addr)
	began := time.Now()
	err := a.TransferLeadership(ctx, cut)
	require.ErrorIs(t, err, client.ErrTimeout)
	assert.Contains(t, err.Error(), "did not take over within")
	assert.Less(t, time.Since(began), 10*time.Second)
	c.Eventually(5*time.Second, "the old leader to lead on", func() bool { return c.Leader() == lead })
}
