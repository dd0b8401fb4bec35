package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// §5.2: a member that hears from no leader for an election timeout starts an
// election and, with a quorum of votes, becomes leader.
func TestElection_LeaderElectedAfterTimeout(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		c := newTestCluster(t, n)
		lead := c.waitLeader(100)
		for _, id := range c.ids {
			r := c.node(id)
			assert.Equal(t, lead, r.lead, "member %d follows the leader", id)
			assert.Equal(t, c.node(lead).term, r.term)
		}
	}
}

// §5.2 Election safety: at most one leader per term, under random delivery.
func TestElection_AtMostOneLeaderPerTerm(t *testing.T) {
	c := newTestCluster(t, 5, withoutPreVote)
	leaders := map[uint64]uint64{}
	for i := range 300 {
		if i%37 == 0 {
			c.partition([]uint64{uint64(i%5 + 1)}, nil)
		}
		if i%53 == 0 {
			c.heal()
		}
		c.tickAll(1)
		for _, id := range c.ids {
			r := c.node(id)
			if r.state == StateLeader {
				if prev, ok := leaders[r.term]; ok {
					require.Equal(t, prev, id, "two leaders in term %d", r.term)
				}
				leaders[r.term] = id
			}
		}
	}
	require.NotEmpty(t, leaders)
}

// §5.2: a candidate with a stale log cannot win (§5.4.1 voting restriction).
func TestElection_VotingRestriction(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	c.propose(1, "a")
	c.stabilize()
	c.heal()
	// 3 missed "a": its log is behind 1's and 2's, so neither votes for it.
	c.node(3).cfg.DisablePreVote = true
	c.node(1).becomeFollower(c.node(1).term, 0) // no leader to lean on
	c.node(2).becomeFollower(c.node(2).term, 0)
	c.node(1).cfg.DisableCheckQuorum, c.node(2).cfg.DisableCheckQuorum = true, true
	c.node(3).Campaign()
	c.stabilize()
	assert.NotEqual(t, StateLeader, c.node(3).state)
}

// §5.1: a leader that sees a higher term steps down.
func TestElection_LeaderStepsDownOnHigherTerm(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(1)
	require.NoError(t, r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.term + 5}))
	assert.Equal(t, StateFollower, r.state)
	assert.Equal(t, uint64(0), r.lead)
}

// Randomized timeouts (§5.2) fall in [ElectionTick, 2*ElectionTick).
func TestElection_RandomizedTimeoutRange(t *testing.T) {
	c := newTestCluster(t, 1)
	r := c.node(1)
	seen := map[int]bool{}
	for range 1000 {
		r.resetRandomizedElectionTimeout()
		require.GreaterOrEqual(t, r.randomizedElectionTimeout, r.cfg.ElectionTick)
		require.Less(t, r.randomizedElectionTimeout, 2*r.cfg.ElectionTick)
		seen[r.randomizedElectionTimeout] = true
	}
	assert.Greater(t, len(seen), 5, "timeouts should spread")
}

// A member that is not ACTIVE never campaigns.
func TestElection_NonVotersDoNotCampaign(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.addEmpty(4)
	cur := c.node(1).config().Index
	_, err := c.node(1).ProposeConfChange(ConfChange{Type: AddMember, ID: 4, Addr: "m4", ConfigIndex: cur})
	require.NoError(t, err)
	c.stabilize()
	c.crash(1)
	for range 200 {
		c.tickAll(1)
		require.NotEqual(t, StateCandidate, c.node(4).state)
		require.NotEqual(t, StatePreCandidate, c.node(4).state)
	}
}
