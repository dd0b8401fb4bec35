package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §6.4: a ReadIndex read returns the commit index once a quorum confirms the
// leader still leads.
func TestReadIndex_ConfirmedByQuorum(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.propose(1, "a")
	c.stabilize()
	r := c.node(1)
	require.NoError(t, r.ReadIndex(7))
	c.stabilize()
	require.Len(t, c.nodes[1].reads, 1)
	assert.Equal(t, ReadState{Index: r.log.committed, Context: 7}, c.nodes[1].reads[0])
}

// §6.4 / copycat#283: a leader cut off from its quorum never answers.
func TestReadIndex_PartitionedLeaderDoesNotAnswer(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(1)
	require.NoError(t, c.node(1).ReadIndex(7))
	c.tickAll(3)
	assert.Empty(t, c.nodes[1].reads)
}

// etcd#20418: an acknowledgement of an earlier round must not confirm a later
// request. Here the followers' answers to the first round are held back and
// delivered after a second request; only the first request is confirmed.
func TestReadIndex_FreshRoundPerRequest(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(1)
	require.NoError(t, r.ReadIndex(1))
	c.process(1)
	round1 := c.queue
	c.queue = nil
	for _, m := range round1 {
		c.deliver(m)
	}
	c.process(2)
	c.process(3)
	acks := c.queue
	c.queue = nil
	require.NoError(t, r.ReadIndex(2))
	c.process(1)
	c.queue = nil // the second round is lost
	for _, m := range acks {
		c.deliver(m)
	}
	c.process(1)
	require.Len(t, c.nodes[1].reads, 1)
	assert.Equal(t, uint64(1), c.nodes[1].reads[0].Context)
}

// A new leader answers reads only after committing an entry of its own term:
// until then its commit index may be behind (§6.4 step 1).
func TestReadIndex_WaitsForCommitInTerm(t *testing.T) {
	c := newTestCluster(t, 3)
	c.stepFn = func(m *Message) bool { return m.Type != MsgApp } // the NoOp cannot commit
	c.elect(1)
	require.NoError(t, c.node(1).ReadIndex(9))
	c.tickAll(2)
	assert.Empty(t, c.nodes[1].reads)
	c.stepFn = nil
	c.tickAll(2)
	require.Len(t, c.nodes[1].reads, 1)
	assert.GreaterOrEqual(t, c.nodes[1].reads[0].Index, uint64(2))
}

// A follower's ReadIndex goes through the leader.
func TestReadIndex_FromFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.propose(1, "a")
	c.stabilize()
	require.NoError(t, c.node(2).ReadIndex(5))
	c.stabilize()
	require.Len(t, c.nodes[2].reads, 1)
	assert.Equal(t, ReadState{Index: c.node(1).log.committed, Context: 5}, c.nodes[2].reads[0])
	// Without a known leader it fails fast.
	c.node(3).lead = 0
	assert.ErrorIs(t, c.node(3).ReadIndex(6), ErrNotLeader)
}

// Many reads between two Readys share one heartbeat round.
func TestReadIndex_Batched(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	for i := range 100 {
		require.NoError(t, c.node(1).ReadIndex(uint64(i)))
	}
	rd := c.node(1).Ready()
	hb := 0
	for _, m := range rd.Messages {
		if m.Type == MsgHeartbeat {
			hb++
		}
	}
	assert.Equal(t, 2, hb)
	c.node(1).Advance(rd)
	c.queue = append(c.queue, rd.Messages...)
	c.stabilize()
	assert.Len(t, c.nodes[1].reads, 100)
}
