package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

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
