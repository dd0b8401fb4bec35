package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func withLazyCommit(c *Config) { c.LazyCommit = true }

// countMessages counts the messages delivered from now on, by type.
func (c *testCluster) countMessages() map[MessageType]int {
	counts := map[MessageType]int{}
	c.stepFn = func(m *Message) bool {
		counts[m.Type]++
		return true
	}
	return counts
}

// A commit costs one append and one acknowledgement per follower with
// LazyCommit; without it the leader follows every commit with a second,
// empty append (and gets a second acknowledgement).
func TestLazyCommit_OneRoundTripPerCommit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          []func(*Config)
		apps, resps   int
		followersKnow bool // followers learn the commit index without more traffic
	}{
		{"eager", nil, 4, 4, true},
		{"lazy", []func(*Config){withLazyCommit}, 2, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, 3, tc.opts...)
			c.elect(1)
			c.stabilize()
			counts := c.countMessages()
			idx := c.propose(1, "x")
			c.stabilize()
			require.Equal(t, idx, c.node(1).log.committed)
			assert.Equal(t, tc.apps, counts[MsgApp])
			assert.Equal(t, tc.resps, counts[MsgAppResp])
			for _, id := range []uint64{2, 3} {
				if tc.followersKnow {
					assert.Equal(t, idx, c.node(id).log.committed, "member %d", id)
				} else {
					assert.Less(t, c.node(id).log.committed, idx, "member %d was told at once", id)
				}
			}
			assert.Equal(t, !tc.followersKnow, c.node(1).CommitPending())
		})
	}
}

// BroadcastCommit tells the followers that have not heard, and only once.
func TestLazyCommit_BroadcastCommitTellsFollowers(t *testing.T) {
	c := newTestCluster(t, 3, withLazyCommit)
	c.elect(1)
	idx := c.propose(1, "x")
	c.stabilize()
	require.True(t, c.node(1).CommitPending())

	counts := c.countMessages()
	c.node(1).BroadcastCommit()
	c.stabilize()
	assert.Equal(t, 2, counts[MsgApp], "one empty append per follower")
	for _, id := range []uint64{2, 3} {
		assert.Equal(t, idx, c.node(id).log.committed, "member %d", id)
		assert.Contains(t, c.appliedData(id), "x", "member %d", id)
	}
	assert.False(t, c.node(1).CommitPending())

	c.node(1).BroadcastCommit()
	c.stabilize()
	assert.Equal(t, 2, counts[MsgApp], "nothing to tell the second time")
}

// The next append carries the commit index: under a steady load followers
// keep up without a broadcast.
func TestLazyCommit_NextAppendCarriesCommit(t *testing.T) {
	c := newTestCluster(t, 3, withLazyCommit)
	c.elect(1)
	first := c.propose(1, "a")
	c.stabilize()
	c.propose(1, "b")
	c.stabilize()
	for _, id := range []uint64{2, 3} {
		assert.GreaterOrEqual(t, c.node(id).log.committed, first, "member %d", id)
		assert.Contains(t, c.appliedData(id), "a", "member %d", id)
	}
}

// A heartbeat carries the commit index too, so a follower learns it within
// a heartbeat even if the driver never broadcasts.
func TestLazyCommit_HeartbeatCarriesCommit(t *testing.T) {
	c := newTestCluster(t, 3, withLazyCommit)
	c.elect(1)
	idx := c.propose(1, "x")
	c.stabilize()
	c.tickAll(c.node(1).cfg.HeartbeatTick)
	c.stabilize()
	for _, id := range []uint64{2, 3} {
		assert.Equal(t, idx, c.node(id).log.committed, "member %d", id)
	}
	assert.False(t, c.node(1).CommitPending())
}

// Only a leader has commits to tell, and a follower it cannot send to (a
// partitioned one whose probe is outstanding) does not keep CommitPending
// true forever.
func TestLazyCommit_PendingOnlyForReachableFollowers(t *testing.T) {
	c := newTestCluster(t, 3, withLazyCommit, withoutCheckQuorum)
	c.elect(1)
	assert.False(t, c.node(2).CommitPending(), "a follower has nothing to tell")

	c.isolate(3)
	idx := c.propose(1, "x")
	c.stabilize()
	require.Equal(t, idx, c.node(1).log.committed)
	c.node(1).BroadcastCommit()
	c.stabilize()
	assert.Equal(t, idx, c.node(2).log.committed)
	// Member 3 never acknowledged x: it holds nothing newly committed.
	assert.False(t, c.node(1).CommitPending())
}
