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

// §5.3 Log matching: a follower with a divergent suffix has it replaced by
// the leader's entries.
func TestReplication_ConflictingSuffixReplaced(t *testing.T) {
	c := newTestCluster(t, 3, withoutCheckQuorum)
	c.elect(1)
	c.isolate(1)
	for i := range 5 {
		c.propose(1, "stale"+string(rune('a'+i)))
	}
	c.stabilize()
	c.heal()
	c.crash(1)
	c.elect(2)
	c.propose(2, "fresh")
	c.stabilize()
	c.restart(1)
	c.tickAll(25)
	for _, id := range c.ids {
		assert.Equal(t, []string{"fresh"}, c.appliedData(id), "member %d", id)
	}
	_, l1 := fullLog(c.node(1))
	_, l2 := fullLog(c.node(2))
	assert.Equal(t, l2, l1)
}

// §5.3 fast back-off: a follower missing many entries of an older term is
// brought up to date in a few round trips, not one per entry.
func TestReplication_FastBackoff(t *testing.T) {
	c := newTestCluster(t, 3, withoutCheckQuorum)
	c.elect(1)
	c.isolate(3)
	for range 200 {
		c.propose(1, "e")
	}
	c.stabilize()
	// 3 grows a long divergent tail of its own in later terms.
	r3 := c.node(3)
	for i := range 100 {
		r3.log.append(Entry{Term: 1, Index: r3.log.lastIndex() + 1})
		_ = i
	}
	c.processAll()
	c.heal()
	rejects := 0
	c.stepFn = func(m *Message) bool {
		if m.Type == MsgAppResp && m.Reject {
			rejects++
		}
		return true
	}
	c.tickAll(5)
	assert.Equal(t, c.node(1).log.lastIndex(), r3.log.lastIndex())
	assert.LessOrEqual(t, rejects, 3, "back-off should skip whole terms")
}

// Pipelining is bounded: a follower that does not answer gets at most
// MaxInflightMsgs appends.
func TestReplication_InflightBounded(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxInflightMsgs = 3; cfg.MaxSizePerMsg = 1 })
	c.elect(1)
	sent := 0
	c.stepFn = func(m *Message) bool {
		if m.Type == MsgApp && m.To == 2 && len(m.Entries) > 0 {
			sent++
		}
		return m.To != 1 || m.From != 2 // 2's answers are lost
	}
	for range 20 {
		c.propose(1, "e")
	}
	c.stabilize()
	assert.Equal(t, 3, sent)
	assert.True(t, c.node(1).prs[2].isPaused())
}

// Proposals made between two Readys go out together: one append per
// follower carries them all (batching).
func TestReplication_ProposalsBatched(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	for range 50 {
		c.propose(1, "e")
	}
	rd := c.node(1).Ready()
	apps := 0
	for _, m := range rd.Messages {
		if m.Type == MsgApp {
			apps++
		}
	}
	assert.Len(t, rd.Entries, 50)
	assert.Equal(t, 2, apps, "one append per follower carries all 50 entries")
	c.node(1).Advance(rd)
}
