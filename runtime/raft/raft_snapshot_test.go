package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §5.1 of the dissertation's log compaction chapter: a follower whose next
// entry is compacted away on the leader is sent the compaction point and
// replaces its state with it; replication continues after it.
func TestSnapshot_LaggingFollowerGetsCompactionPoint(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	for range 20 {
		c.propose(1, "e")
	}
	c.stabilize()
	r1 := c.node(1)
	cut := r1.log.committed - 2
	require.NoError(t, c.nodes[1].st.Compact(cut, *r1.config(), []byte("state@cut")))
	snaps := 0
	c.stepFn = func(m *Message) bool {
		if m.Type == MsgSnap {
			snaps++
			assert.Equal(t, cut, m.Snapshot.Meta.Index)
			assert.Equal(t, []byte("state@cut"), m.Snapshot.Data)
			assert.Len(t, m.Snapshot.Meta.Config.Voters(), 3)
		}
		return true
	}
	c.heal()
	c.tickAll(3)
	require.Equal(t, 1, snaps)
	// The follower acknowledged the installed point; ReportSnapshot after
	// that changes nothing.
	r1.ReportSnapshot(3, true)
	c.tickAll(3)
	r3 := c.node(3)
	assert.Equal(t, r1.log.lastIndex(), r3.log.lastIndex())
	assert.Equal(t, cut+1, r3.log.firstIndex())
	assert.Equal(t, StateReplicate, r1.prs[3].State)
	// Entries after the cut were applied normally.
	assert.Equal(t, int(r1.log.committed-cut), len(c.nodes[3].applied))
	assert.Len(t, r3.config().Voters(), 3, "configuration comes with the compaction point")
}

// A failed transfer is retried.
func TestSnapshot_FailedTransferRetried(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	for range 10 {
		c.propose(1, "e")
	}
	c.stabilize()
	r1 := c.node(1)
	require.NoError(t, c.nodes[1].st.Compact(r1.log.committed, *r1.config(), nil))
	c.heal()
	snaps := 0
	c.stepFn = func(m *Message) bool {
		if m.Type == MsgSnap {
			snaps++
			return false
		}
		return true
	}
	c.tickAll(3)
	r1.ReportSnapshot(3, false)
	c.tickAll(3)
	assert.Equal(t, 2, snaps)
}

// A follower that already holds the compaction point's entry only moves its
// commit index forward and keeps its log.
func TestSnapshot_FollowerAlreadyHasEntry(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	for range 5 {
		c.propose(1, "e")
	}
	c.stabilize()
	r2 := c.node(2)
	last := r2.log.lastIndex()
	term := r2.log.lastTerm()
	r2.log.committed = 2
	require.NoError(t, r2.Step(Message{Type: MsgSnap, From: 1, To: 2, Term: r2.term, Snapshot: &Snapshot{Meta: SnapshotMeta{Index: last, Term: term, Config: r2.config().Clone()}}}))
	assert.Equal(t, last, r2.log.committed)
	assert.Nil(t, r2.log.unstable.snapshot)
}
