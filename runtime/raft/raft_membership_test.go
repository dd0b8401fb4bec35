package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (c *testCluster) change(lead uint64, cc ConfChange) (uint64, error) {
	cc.ConfigIndex = c.node(lead).config().Index
	return c.node(lead).ProposeConfChange(cc)
}

// §4.2.1 + Copycat's lesson: a new member joins PASSIVE, catches up without
// voting, and is promoted only once it has caught up.
func TestMembership_AddPassiveThenPromote(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	for range 20 {
		c.propose(1, "e")
	}
	c.stabilize()
	c.addEmpty(4)
	_, err := c.change(1, ConfChange{Type: AddMember, ID: 4, Addr: "m4", MemberType: Active})
	require.ErrorIs(t, err, ErrInvalidConfChange, "new members may not vote at once")

	c.stepFn = func(m *Message) bool { return m.To != 4 } // 4 is slow
	_, err = c.change(1, ConfChange{Type: AddMember, ID: 4, Addr: "m4"})
	require.NoError(t, err)
	c.stabilize()
	assert.Equal(t, 3, c.node(1).quorum()*2-1, "a PASSIVE member does not change the quorum")
	_, err = c.change(1, ConfChange{Type: PromoteMember, ID: 4})
	require.ErrorIs(t, err, ErrInvalidConfChange, "not caught up yet")

	c.stepFn = nil
	c.tickAll(3)
	assert.Equal(t, c.node(1).log.lastIndex(), c.node(4).log.lastIndex(), "the PASSIVE member received the log")
	assert.Equal(t, []string(c.appliedData(1)), c.appliedData(4))
	_, err = c.change(1, ConfChange{Type: PromoteMember, ID: 4})
	require.NoError(t, err)
	c.stabilize()
	for _, id := range c.ids {
		assert.True(t, c.node(id).config().IsVoter(4), "member %d sees 4 as a voter", id)
	}
	assert.Equal(t, 3, c.node(1).quorum())
}

// §4.1: a configuration takes effect when appended, before it commits.
func TestMembership_EffectiveOnAppend(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.stepFn = func(m *Message) bool { return m.Type != MsgAppResp } // nothing commits
	idx, err := c.change(1, ConfChange{Type: DemoteMember, ID: 3})
	require.NoError(t, err)
	c.stabilize()
	for _, id := range c.ids {
		require.Equal(t, idx, c.node(id).config().Index, "member %d", id)
		assert.False(t, c.node(id).config().IsVoter(3))
	}
	assert.Less(t, c.node(1).log.committed, idx)
}

// §4.3: one change at a time; a second waits until the first commits. The
// configuration index is a compare-and-set.
func TestMembership_OneAtATimeAndCompareAndSet(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.stepFn = func(m *Message) bool { return m.Type != MsgAppResp }
	_, err := c.change(1, ConfChange{Type: DemoteMember, ID: 3})
	require.NoError(t, err)
	_, err = c.change(1, ConfChange{Type: DemoteMember, ID: 2})
	require.ErrorIs(t, err, ErrConfigChangePending)
	c.stepFn = nil
	c.tickAll(2)
	_, err = c.node(1).ProposeConfChange(ConfChange{Type: DemoteMember, ID: 2, ConfigIndex: 1})
	require.ErrorIs(t, err, ErrConfigIndexMismatch)
	_, err = c.change(1, ConfChange{Type: DemoteMember, ID: 2})
	require.NoError(t, err)
}

// A truncated configuration entry stops being in effect: the member falls
// back to the previous configuration.
func TestMembership_TruncatedConfigReverts(t *testing.T) {
	c := newTestCluster(t, 3, withoutCheckQuorum)
	c.elect(1)
	c.isolate(1)
	_, err := c.change(1, ConfChange{Type: DemoteMember, ID: 3})
	require.NoError(t, err)
	c.stabilize()
	require.False(t, c.node(1).config().IsVoter(3))
	c.heal()
	c.isolate(1)
	c.partition([]uint64{2, 3})
	c.elect(2)
	c.propose(2, "x")
	c.heal()
	c.tickAll(20)
	assert.Equal(t, uint64(1), c.node(1).config().Index, "the uncommitted demotion was replaced")
	assert.True(t, c.node(1).config().IsVoter(3))
}

// §4.2.2: a leader that removes itself keeps leading until the change
// commits, not counting itself, then steps down; a voter takes over.
func TestMembership_RemoveLeader(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	idx, err := c.change(1, ConfChange{Type: RemoveMember, ID: 1})
	require.NoError(t, err)
	c.stabilize()
	r1 := c.node(1)
	assert.GreaterOrEqual(t, r1.log.committed, idx)
	assert.NotEqual(t, StateLeader, r1.state, "the removed leader stepped down")
	lead := c.waitLeader(50)
	assert.Contains(t, []uint64{2, 3}, lead)
	for range 50 {
		c.tickAll(1)
		require.NotEqual(t, StateCandidate, r1.state, "a removed member never campaigns")
		require.NotEqual(t, StatePreCandidate, r1.state)
	}
	c.propose(c.leader(), "after")
	c.stabilize()
	assert.Contains(t, c.appliedData(2), "after")
	assert.Equal(t, 2, len(c.node(c.leader()).config().Voters()))
}

// A leader that removes itself and loses leadership before the change
// commits can still finish it: it may campaign under the committed
// configuration, and wins the remaining voter whose log is behind.
func TestMembership_DemotedLeaderFinishesChange(t *testing.T) {
	c := newTestCluster(t, 2)
	c.elect(1)
	c.stepFn = func(m *Message) bool { return m.From != 1 || m.Type != MsgApp } // 2 hears nothing
	_, err := c.change(1, ConfChange{Type: DemoteMember, ID: 1})
	require.NoError(t, err)
	c.stabilize()
	c.node(1).becomeFollower(c.node(1).term, 0) // lost leadership before commit
	c.stepFn = nil
	c.waitLeader(200)
	c.tickAll(20)
	for _, id := range c.ids {
		assert.Equal(t, []uint64{2}, c.node(id).config().Voters(), "member %d", id)
	}
	assert.Equal(t, uint64(2), c.leader())
}

// RESERVE members get no log; promoting them to PASSIVE starts replication.
func TestMembership_ReserveGetsNoLog(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.addEmpty(4)
	_, err := c.change(1, ConfChange{Type: AddMember, ID: 4, Addr: "m4", MemberType: Reserve})
	require.NoError(t, err)
	c.tickAll(5)
	assert.Equal(t, uint64(0), c.node(4).log.lastIndex())
	_, err = c.change(1, ConfChange{Type: PromoteMember, ID: 4})
	require.NoError(t, err)
	c.tickAll(5)
	assert.Equal(t, c.node(1).log.lastIndex(), c.node(4).log.lastIndex())
	m, _ := c.node(4).config().Member(4)
	assert.Equal(t, Passive, m.Type)
}

// A change that would leave no voter is refused.
func TestMembership_InvalidChanges(t *testing.T) {
	c := newTestCluster(t, 1)
	c.elect(1)
	for _, cc := range []ConfChange{
		{Type: RemoveMember, ID: 1},
		{Type: DemoteMember, ID: 1},
		{Type: RemoveMember, ID: 9},
		{Type: AddMember, ID: 1},
		{Type: AddMember, ID: 0},
		{Type: ConfChangeType(99), ID: 2},
	} {
		_, err := c.change(1, cc)
		assert.ErrorIs(t, err, ErrInvalidConfChange, "%+v", cc)
	}
}

// A new leader may not change the configuration before it commits an entry
// of its term (the correction to the single-server algorithm).
func TestMembership_NoChangeBeforeCommitInTerm(t *testing.T) {
	c := newTestCluster(t, 3)
	c.stepFn = func(m *Message) bool { return m.Type != MsgApp }
	c.elect(1)
	_, err := c.change(1, ConfChange{Type: DemoteMember, ID: 3})
	assert.ErrorIs(t, err, ErrConfigChangePending)
}

func TestConfiguration_EncodeDecode(t *testing.T) {
	in := Configuration{Members: []Member{{ID: 1, Type: Active, Addr: "10.0.0.1:5000"}, {ID: 1 << 60, Type: Reserve}, {ID: 3, Type: Passive, Addr: "x"}}}
	out, err := DecodeConfiguration(EncodeConfiguration(in))
	require.NoError(t, err)
	assert.Equal(t, in, out)
	for _, bad := range [][]byte{nil, {0}, {1}, {1, 1}, {1, 1, 1, 7, 0}, {1, 1, 1, 1, 5, 'a'}, append(EncodeConfiguration(in), 0)} {
		_, err := DecodeConfiguration(bad)
		assert.Error(t, err, "%v", bad)
	}
}

func FuzzDecodeConfiguration(f *testing.F) {
	f.Add(EncodeConfiguration(Configuration{Members: []Member{{ID: 1, Type: Active, Addr: "a"}}}))
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeConfiguration(data)
		if err != nil {
			return
		}
		again, err := DecodeConfiguration(EncodeConfiguration(c))
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}
