package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §3.10: the leader brings the target up to date, then tells it to campaign
// at once; the target wins even though the others still hear the old leader.
func TestTransfer_ToUpToDateFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.propose(1, "a")
	c.stabilize()
	require.NoError(t, c.node(1).TransferLeadership(2))
	c.stabilize()
	assert.Equal(t, StateLeader, c.node(2).state)
	assert.Equal(t, uint64(2), c.node(1).lead)
}

func TestTransfer_ToLaggingFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	for range 10 {
		c.propose(1, "a")
	}
	c.stabilize()
	c.heal()
	require.NoError(t, c.node(1).TransferLeadership(3))
	_, err := c.node(1).Propose(Entry{Data: []byte("b")})
	assert.ErrorIs(t, err, ErrProposalDropped, "proposals are refused during a transfer")
	c.stabilize()
	assert.Equal(t, StateLeader, c.node(3).state)
	assert.Len(t, c.appliedData(3), 10)
}

// A transfer that cannot finish is abandoned after an election timeout and
// the leader accepts proposals again.
func TestTransfer_TimesOut(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	c.propose(1, "a")
	c.stabilize()
	require.NoError(t, c.node(1).TransferLeadership(3))
	c.tickAll(c.node(1).cfg.ElectionTick)
	assert.Equal(t, uint64(0), c.node(1).leadTransferee)
	assert.Equal(t, StateLeader, c.node(1).state)
	_, err := c.node(1).Propose(Entry{Data: []byte("b")})
	assert.NoError(t, err)
}

func TestTransfer_InvalidTargets(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	assert.ErrorIs(t, c.node(1).TransferLeadership(9), ErrInvalidTransferTarget)
	assert.NoError(t, c.node(1).TransferLeadership(1))
	assert.ErrorIs(t, c.node(2).TransferLeadership(3), ErrNotLeader)
	c.stepFn = func(m *Message) bool { return m.Type != MsgTimeoutNow }
	require.NoError(t, c.node(1).TransferLeadership(2))
	assert.ErrorIs(t, c.node(1).TransferLeadership(3), ErrTransferInProgress)
}
