package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §5.4.2 (Figure 8): a leader must not commit an entry of an earlier term by
// counting replicas, or a later leader may overwrite it.
func TestCommitment_PreviousTermEntryNotCommittedByCounting(t *testing.T) {
	c := newTestCluster(t, 5, withoutPreVote, withoutCheckQuorum, func(c *Config) { c.MaxSizePerMsg = 1 })
	c.elect(1) // term 2; the NoOp at index 2 commits everywhere
	require.Equal(t, uint64(2), c.node(1).log.committed)

	// (a) S1 appends index 3 in term 2 and gets it only to S2.
	c.partition([]uint64{1, 2}, []uint64{3, 4, 5})
	c.propose(1, "x")
	c.stabilize()
	require.Equal(t, uint64(3), c.node(2).log.lastIndex())

	// (b) S1 crashes; S5 is elected by S3, S4 (term 3) and appends its own entry.
	c.crash(1)
	c.partition([]uint64{2}, []uint64{3, 4, 5})
	c.stepFn = func(m *Message) bool { return m.Type != MsgApp } // S5's entries stay on S5
	c.elect(5)
	c.propose(5, "y")
	c.stabilize()
	c.stepFn = nil
	c.crash(5)

	// (c) S1 restarts and is elected (term 4) with S2, S3; it replicates its
	// term-2 entry at index 3 to S3: a majority holds it now.
	c.restart(1)
	c.partition([]uint64{1, 2, 3}, []uint64{4}, []uint64{5})
	// Hold back S1's own NoOp of its new term so that only index 3 spreads.
	c.stepFn = func(m *Message) bool {
		if m.From == 1 {
			for i, e := range m.Entries {
				if e.Term > 2 {
					m.Entries = m.Entries[:i]
					break
				}
			}
		}
		return true
	}
	c.elect(1)
	c.tickAll(3)
	require.True(t, c.node(3).log.matchTerm(3, 2), "S3 should hold index 3 of term 2")
	assert.Less(t, c.node(1).log.committed, uint64(3), "index 3 (term 2) is on a majority but must not be committed by counting")

	// (d) Had it been committed, S5 could now overwrite it: S5 (last term 3)
	// wins votes from S2, S3, S4 whose logs end in term 2.
	c.stepFn = nil
	c.crash(1)
	c.restart(5)
	c.partition([]uint64{2, 3, 4, 5})
	c.elect(5)
	c.stabilize()
	for _, id := range []uint64{2, 3, 4, 5} {
		assert.NotContains(t, c.appliedData(id), "x", "member %d applied the overwritten entry", id)
	}
}

// §5.4.2: once an entry of the leader's term commits, the earlier entries
// before it commit with it.
func TestCommitment_CurrentTermCommitCarriesEarlierEntries(t *testing.T) {
	c := newTestCluster(t, 3, withoutCheckQuorum)
	c.elect(1)
	c.partition([]uint64{1}, []uint64{2, 3})
	c.propose(1, "a")
	c.stabilize()
	c.heal()
	c.crash(1)
	c.restart(1)
	c.tickAll(1)
	c.elect(1) // term-3 NoOp commits and with it index 3 ("a", term 2)
	for _, id := range c.ids {
		assert.Equal(t, []string{"a"}, c.appliedData(id), "member %d", id)
	}
}
