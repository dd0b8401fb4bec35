package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §9.6: a member partitioned away keeps timing out. Without pre-vote it
// bumps its term each time and, on rejoining, forces the healthy leader to
// step down. With pre-vote its term stays put and the leader keeps leading.
func TestPreVote_RejoiningMemberDoesNotDisrupt(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []func(*Config)
		disruption bool
	}{
		{"pre-vote", nil, false},
		{"no pre-vote", []func(*Config){withoutPreVote, withoutCheckQuorum}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, 3, tc.opts...)
			c.elect(1)
			term := c.node(1).term
			c.isolate(3)
			c.tickAll(100) // 3 times out again and again
			if !tc.disruption {
				assert.Equal(t, term, c.node(3).term, "a pre-candidate does not bump its term")
			} else {
				require.Greater(t, c.node(3).term, term)
			}
			c.heal()
			c.tickAll(30)
			if tc.disruption {
				assert.Greater(t, c.node(c.waitLeader(100)).term, term, "without pre-vote the rejoining member forces a new term")
			} else {
				assert.Equal(t, StateLeader, c.node(1).state)
				assert.Equal(t, term, c.node(1).term, "the leader was not disturbed")
				assert.Equal(t, uint64(1), c.node(3).lead, "the rejoined member follows the leader")
			}
		})
	}
}

// §9.6: a pre-vote is granted only to a candidate whose log is up to date,
// and only when the voter has not heard from a leader recently.
func TestPreVote_GrantRules(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r2 := c.node(2)
	term := r2.term
	// In lease: refused silently (no response at all).
	require.NoError(t, r2.Step(Message{Type: MsgPreVote, From: 3, To: 2, Term: term + 1, Index: 100, LogTerm: term}))
	rd := r2.Ready()
	assert.Empty(t, append(rd.Messages, rd.MessagesAfterSave...))
	r2.Advance(rd)
	// Out of lease: granted if up to date, never changing the voter's term or vote.
	for range r2.cfg.ElectionTick {
		r2.Tick()
	}
	r2.lead = 0
	require.NoError(t, r2.Step(Message{Type: MsgPreVote, From: 3, To: 2, Term: term + 1, Index: 100, LogTerm: term}))
	require.NoError(t, r2.Step(Message{Type: MsgPreVote, From: 1, To: 2, Term: term + 1, Index: 0, LogTerm: 0}))
	rd = r2.Ready()
	msgs := append(rd.Messages, rd.MessagesAfterSave...)
	require.Len(t, msgs, 2)
	assert.False(t, msgs[0].Reject, "up-to-date candidate is granted")
	assert.True(t, msgs[1].Reject, "stale candidate is refused")
	assert.Equal(t, term, r2.term)
	assert.Equal(t, uint64(1), r2.vote)
}
