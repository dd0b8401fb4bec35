package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §6.4.1: with a lease confirmed by a quorum, a lease read is answered at
// once, without a round trip.
func TestLease_ReadWithoutRoundTrip(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.tickAll(1) // one acknowledged heartbeat round starts the lease
	r := c.node(1)
	require.True(t, r.leaseValid())
	require.NoError(t, r.LeaseRead(3))
	rd := r.Ready()
	require.Len(t, rd.ReadStates, 1)
	for _, m := range rd.Messages {
		assert.NotEqual(t, MsgHeartbeat, m.Type, "no round trip for a lease read")
	}
	r.Advance(rd)
}

// The lease runs out ElectionTick-LeaseMarginTick ticks after the last
// acknowledged round was sent — before any follower can vote for someone else.
func TestLease_ExpiresBeforeFollowersCanElect(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.tickAll(1)
	r := c.node(1)
	start := r.reads.leaseStart
	c.isolate(1)
	expired := uint64(0)
	for range 3 * r.cfg.ElectionTick {
		r.Tick()
		c.process(1)
		if !r.leaseValid() && expired == 0 {
			expired = r.ticks
		}
	}
	require.NotZero(t, expired)
	assert.Equal(t, start+uint64(r.cfg.ElectionTick-r.cfg.LeaseMarginTick), expired)
	// Followers refuse votes until ElectionTick after they last heard the leader.
	assert.Less(t, expired, start+uint64(r.cfg.ElectionTick))
}

// A partitioned leader's lease read falls back to ReadIndex, which cannot
// complete without a quorum.
func TestLease_PartitionedLeaderFallsBack(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.tickAll(1)
	c.isolate(1)
	r := c.node(1)
	for range r.cfg.ElectionTick {
		r.Tick()
		c.process(1)
	}
	c.nodes[1].reads = nil
	require.NoError(t, r.LeaseRead(4))
	c.tickAll(3)
	assert.Empty(t, c.nodes[1].reads)
}

// No lease without check-quorum, nor during a leadership transfer (the
// transferee may be elected at once).
func TestLease_NotWithoutCheckQuorumOrDuringTransfer(t *testing.T) {
	c := newTestCluster(t, 3, withoutCheckQuorum)
	c.elect(1)
	c.tickAll(2)
	assert.False(t, c.node(1).leaseValid())

	c = newTestCluster(t, 3)
	c.elect(1)
	c.tickAll(2)
	require.True(t, c.node(1).leaseValid())
	c.stepFn = func(m *Message) bool { return m.Type != MsgTimeoutNow }
	require.NoError(t, c.node(1).TransferLeadership(2))
	assert.False(t, c.node(1).leaseValid())
}

// A restarted member may have acknowledged a leader whose lease still runs:
// it refuses votes for an election timeout after it starts.
func TestLease_RestartedMemberHonoursLease(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.tickAll(1)
	c.crash(2)
	c.restart(2)
	r2 := c.node(2)
	term := r2.term
	require.NoError(t, r2.Step(Message{Type: MsgVote, From: 3, To: 2, Term: term + 1, Index: 100, LogTerm: term}))
	assert.Equal(t, term, r2.term, "vote request ignored inside the restart lease")
	for range r2.cfg.ElectionTick {
		r2.Tick()
	}
	require.NoError(t, r2.Step(Message{Type: MsgVote, From: 3, To: 2, Term: term + 1, Index: 100, LogTerm: term}))
	assert.Equal(t, uint64(3), r2.vote)
}

// A transfer that timed out may leave a TimeoutNow in flight: voters will
// grant the transferee's vote despite their leases, so the old leader's lease
// stays void for the rest of its term, and its lease reads fall back to
// ReadIndex, which cannot complete once it has lost.
func TestLease_VoidAfterTimeoutNowEvenIfTransferTimesOut(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.tickAll(1)
	r1 := c.node(1)
	require.True(t, r1.leaseValid())

	var held []Message
	c.stepFn = func(m *Message) bool {
		if m.Type == MsgTimeoutNow {
			held = append(held, *m)
			return false
		}
		return true
	}
	require.NoError(t, r1.TransferLeadership(2))
	c.stabilize()
	require.Len(t, held, 1, "TimeoutNow was sent (and is delayed in the network)")
	c.stepFn = nil

	// The transfer times out after ElectionTick; heartbeats keep being acked.
	c.tickAll(r1.cfg.ElectionTick)
	require.Equal(t, StateLeader, r1.state)
	require.Zero(t, r1.leadTransferee, "transfer aborted")
	require.False(t, r1.leaseValid(), "no lease for the rest of the term")

	// The delayed TimeoutNow arrives; 1 does not hear from the others for a moment.
	c.cut[[2]uint64{2, 1}] = true
	c.cut[[2]uint64{3, 1}] = true
	require.NoError(t, c.node(2).Step(held[0]))
	c.stabilize()
	require.Equal(t, StateLeader, c.node(2).state, "3 granted the transfer vote despite its lease")
	idx := c.propose(2, "x")
	c.stabilize()
	require.GreaterOrEqual(t, c.node(2).log.committed, idx, "x is committed by the new leader")

	// The old leader, still cut off, cannot answer a lease read from stale state.
	require.False(t, r1.leaseValid())
	c.nodes[1].reads = nil
	require.NoError(t, r1.LeaseRead(77))
	c.process(1)
	c.queue = nil
	for _, rs := range c.nodes[1].reads {
		require.GreaterOrEqual(t, rs.Index, idx, "stale lease read")
	}
}
