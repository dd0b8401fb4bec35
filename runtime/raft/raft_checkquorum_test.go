package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §6.2: a leader that has not heard from a quorum for an election timeout
// steps down, so that clients find the real leader.
func TestCheckQuorum_LeaderStepsDownWithoutQuorum(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(1)
	r := c.node(1)
	for range 2 * r.cfg.ElectionTick {
		r.Tick()
		c.process(1)
	}
	assert.Equal(t, StateFollower, r.state)
	assert.Equal(t, uint64(0), r.lead)
}

func TestCheckQuorum_DisabledLeaderStays(t *testing.T) {
	c := newTestCluster(t, 3, withoutCheckQuorum)
	c.elect(1)
	c.isolate(1)
	r := c.node(1)
	for range 5 * r.cfg.ElectionTick {
		r.Tick()
		c.process(1)
	}
	assert.Equal(t, StateLeader, r.state)
}

// A leader whose own storage stops persisting steps down even though its
// followers answer every heartbeat (hashicorp/raft#612).
func TestCheckQuorum_StalledStorageLeaderStepsDown(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(1)
	c.propose(1, "a")
	// The leader's driver keeps sending but never finishes a save: it hands
	// out Readys and delivers the messages, but never calls Advance.
	for range 2 * r.cfg.ElectionTick {
		r.Tick()
		rd := r.Ready()
		for _, m := range append(rd.Messages, rd.MessagesAfterSave...) {
			c.deliver(m)
		}
		c.process(2)
		c.process(3)
		for _, m := range c.queue {
			if m.To == 1 {
				c.deliver(m)
			}
		}
		c.queue = nil
	}
	require.Equal(t, StateFollower, r.state, "a leader whose disk stalled must not keep leading on heartbeats")
}

// A leader whose saves make progress is not taken for stalled, however busy.
func TestCheckQuorum_BusyStorageIsNotStalled(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	for range 10 * c.node(1).cfg.ElectionTick {
		c.propose(1, "a")
		c.tickAll(1)
	}
	assert.Equal(t, StateLeader, c.node(1).state)
}
