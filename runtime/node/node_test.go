package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
)

func TestNode_ProposeAppliesEverywhere(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.members[lead].n.Propose(ctx, []byte("hello"))
	require.NoError(t, err)
	idx := res.Index
	for _, m := range c.members {
		c.eventually(5*time.Second, "apply everywhere", func() bool { return m.n.Status().Applied >= idx })
	}
	_, err = c.members[lead%3+1].n.Propose(ctx, []byte("x"))
	assert.ErrorIs(t, err, raft.ErrNotLeader)
}

func TestNode_ReadIndexAndLease(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.members[lead].n.Propose(ctx, []byte("w"))
	require.NoError(t, err)
	idx := res.Index
	for _, lease := range []bool{false, true} {
		ri, err := c.members[lead].n.ReadIndex(ctx, lease)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, ri, idx, "a read reflects the committed write")
	}
	// A follower's ReadIndex goes through the leader and waits until the
	// follower itself applied the index.
	f := c.members[lead%3+1].n
	ri, err := f.ReadIndex(ctx, false)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ri, idx)
	assert.GreaterOrEqual(t, f.Status().Applied, ri)
}

// A leader cut off from the others cannot confirm a read (copycat#283).
func TestNode_PartitionedLeaderCannotRead(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	c.net.Isolate(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.members[lead].n.ReadIndex(ctx, false)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, raft.ErrNotLeader), "got %v", err)
}

func TestNode_TransferLeadership(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	to := lead%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.members[lead].n.TransferLeadership(ctx, to))
	assert.Equal(t, to, c.waitLeader(5*time.Second))
}

// A new member joins PASSIVE, catches up, is promoted and then counts.
func TestNode_AddMemberThenPromote(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.proposeMany(ctx, "before", 200, 8)

	c.members[4] = &testMember{id: 4, addr: "mem-4", store: rlog.NewMemory(),
		peers: map[uint64]string{1: "mem-1", 2: "mem-2", 3: "mem-3"}}
	c.start(4)
	ln := c.members[lead].n
	_, err := ln.ChangeMembership(ctx, raft.ConfChange{Type: raft.AddMember, ID: 4, Addr: "mem-4", ConfigIndex: ln.Status().Config.Index})
	require.NoError(t, err)
	c.eventually(10*time.Second, "member 4 catches up", func() bool {
		return c.members[4].n.Status().Applied >= ln.Status().HardState.Commit
	})
	for {
		_, err = ln.ChangeMembership(ctx, raft.ConfChange{Type: raft.PromoteMember, ID: 4, ConfigIndex: ln.Status().Config.Index})
		if !errors.Is(err, raft.ErrInvalidConfChange) {
			break
		}
		time.Sleep(c.tick)
	}
	require.NoError(t, err)
	assert.True(t, c.members[4].n.Status().Config.IsVoter(4) || c.eventuallyVoter(4))
	// With 4 voters, two down is too many; one down is fine.
	c.stop(lead%4 + 1)
	c.proposeMany(ctx, "after", 50, 4)
}

func (c *testCluster) eventuallyVoter(id uint64) bool {
	c.eventually(5*time.Second, "member sees itself as voter", func() bool {
		return c.members[id].n.Status().Config.IsVoter(id)
	})
	return true
}

// Stop fails what is in flight with ErrStopped, and later calls too.
func TestNode_StopFailsCalls(t *testing.T) {
	c := newMemCluster(t, 1)
	c.waitLeader(5 * time.Second)
	n := c.members[1].n
	n.Stop()
	_, err := n.Propose(context.Background(), []byte("x"))
	assert.ErrorIs(t, err, ErrStopped)
	assert.NoError(t, n.Err())
}

// A failing disk stops the node with the error instead of acknowledging
// what it could not persist.
func TestNode_SaveFailureStops(t *testing.T) {
	c := newMemCluster(t, 1)
	c.waitLeader(5 * time.Second)
	m := c.members[1]
	c.stop(1)
	m.store = &failingStore{Store: m.store, failAfter: 1}
	c.start(1)
	n := m.n
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case <-n.Done():
			require.ErrorIs(t, n.Err(), errDiskFull)
			return
		default:
		}
		_, _ = n.Propose(ctx, []byte("x"))
	}
	t.Fatal("node did not stop on a failing save")
}

var errDiskFull = errors.New("disk full")

type failingStore struct {
	rlog.Store
	failAfter int
}

func (f *failingStore) Save(hs raft.HardState, ents []raft.Entry) error {
	if f.failAfter <= 0 {
		return errDiskFull
	}
	f.failAfter--
	return f.Store.Save(hs, ents)
}

// slowStore blocks Save while armed, like a disk that stalls.
type slowStore struct {
	rlog.Store
	block atomic.Pointer[chan struct{}] // Save waits on it while set
}

func (s *slowStore) Save(hs raft.HardState, ents []raft.Entry) error {
	if b := s.block.Load(); b != nil {
		<-*b
	}
	return s.Store.Save(hs, ents)
}

// A leader whose loop was blocked longer than its lease (a stalled fsync)
// must not answer a lease read from its old lease when it wakes up: the
// ticks it missed are delivered first, and the lease has run out.
func TestNode_LeaseExpiresAcrossBlockedLoop(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	m := c.members[lead]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Restart the leader's node on a store we can stall, and wait until it
	// leads again with a lease.
	c.stop(lead)
	slow := &slowStore{Store: m.store}
	m.store = slow
	c.start(lead)
	for {
		ldr := c.waitLeader(5 * time.Second)
		if ldr == lead {
			break
		}
		require.NoError(t, c.members[ldr].n.TransferLeadership(ctx, lead))
	}
	_, err := m.n.ReadIndex(ctx, true)
	require.NoError(t, err)

	// Stall its disk and cut it off; the others elect a new leader and
	// commit a write meanwhile.
	block := make(chan struct{})
	slow.block.Store(&block)
	c.net.Isolate(lead)
	go func() { _, _ = m.n.Propose(context.Background(), []byte("stuck")) }()
	var other uint64
	c.eventually(5*time.Second, "a new leader", func() bool {
		for id, o := range c.members {
			if id != lead && o.n.Status().SoftState.State == raft.StateLeader {
				other = id
				return true
			}
		}
		return false
	})
	res, err := c.members[other].n.Propose(ctx, []byte("x"))
	require.NoError(t, err)

	// The disk comes back. A lease read on the old leader must not miss x.
	slow.block.Store(nil)
	close(block)
	rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer rcancel()
	idx, err := m.n.ReadIndex(rctx, true)
	if err == nil {
		assert.GreaterOrEqual(t, idx, res.Index, "stale lease read after a stalled loop")
	}
}

// A leader that removes itself commits the change on its followers'
// acknowledgements — which they send after their write of that very entry,
// when it has taken effect there and the leader is no longer a member:
// the transport must still reach it then.
func TestNode_LeaderRemovesItself(t *testing.T) {
	c := newMemCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	ln := c.members[lead].n
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := ln.ChangeMembership(ctx, raft.ConfChange{Type: raft.RemoveMember, ID: lead, ConfigIndex: ln.Status().Config.Index})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ln.Status().HardState.Commit, idx)
	c.eventually(5*time.Second, "a new leader among the others", func() bool {
		for id, m := range c.members {
			if id != lead && m.n.Status().SoftState.State == raft.StateLeader {
				return true
			}
		}
		return false
	})
}
