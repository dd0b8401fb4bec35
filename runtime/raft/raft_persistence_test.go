package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func types(ms []Message) []MessageType {
	var out []MessageType
	for _, m := range ms {
		out = append(out, m.Type)
	}
	return out
}

// A follower acknowledges entries, and a voter grants its vote, only after
// they are durable: those messages wait in MessagesAfterSave.
func TestPersistence_AcksWaitForSave(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r2 := c.node(2)
	require.NoError(t, r2.Step(Message{Type: MsgApp, From: 1, To: 2, Term: r2.term, Index: r2.log.lastIndex(), LogTerm: r2.log.lastTerm(),
		Entries: []Entry{{Term: r2.term, Index: r2.log.lastIndex() + 1, Data: []byte("x")}}}))
	rd := r2.Ready()
	assert.Len(t, rd.Entries, 1)
	assert.NotContains(t, types(rd.Messages), MsgAppResp)
	assert.Contains(t, types(rd.MessagesAfterSave), MsgAppResp)
	r2.Advance(rd)

	c3 := newTestCluster(t, 3, withoutPreVote)
	r := c3.node(1)
	r.Campaign()
	rd = r.Ready()
	assert.Equal(t, uint64(1), rd.HardState.Vote)
	assert.Empty(t, rd.Messages, "vote requests wait until the vote for self is durable")
	assert.Equal(t, []MessageType{MsgVote, MsgVote}, types(rd.MessagesAfterSave))
}

// A leader's appends go out at once, in parallel with its own write
// (§10.2.1), and it counts itself only once its write is done.
func TestPersistence_LeaderSendsInParallel(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(1)
	idx := c.propose(1, "x")
	rd := r.Ready()
	assert.Contains(t, types(rd.Messages), MsgApp)
	for _, m := range rd.Messages {
		c.deliver(m)
	}
	c.process(2) // one follower acknowledges
	for _, m := range c.queue {
		c.deliver(m)
	}
	c.queue = nil
	assert.Less(t, r.log.committed, idx, "one follower's ack is not a quorum while the leader's own write is in progress")
	require.NoError(t, c.nodes[1].st.Append(rd.Entries))
	r.Advance(rd)
	assert.Equal(t, idx, r.log.committed, "the leader's finished write completes the quorum")
}

// With a single voter the leader commits only once its own write is done.
func TestPersistence_SingleVoterCommitsAfterSave(t *testing.T) {
	c := newTestCluster(t, 1)
	c.elect(1)
	r := c.node(1)
	idx := c.propose(1, "x")
	rd := r.Ready()
	assert.Less(t, r.log.committed, idx)
	require.NoError(t, c.nodes[1].st.Append(rd.Entries))
	r.Advance(rd)
	assert.Equal(t, idx, r.log.committed)
}

// Crashing loses what was not saved; what was saved survives a restart.
func TestPersistence_CrashLosesOnlyUnsaved(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.propose(1, "saved")
	c.stabilize()
	c.propose(1, "unsaved")
	_ = c.node(1).Ready() // handed out, never saved
	c.crash(1)
	c.restart(1)
	_, l := fullLog(c.node(1))
	var data []string
	for _, e := range l {
		if e.Type == EntryNormal {
			data = append(data, string(e.Data))
		}
	}
	assert.Equal(t, []string{"saved"}, data)
}

// A leader elected within one step (a single voter) must not send appends
// before its new term is durable: if it crashed and came back in the old term
// it could lead the same term again with a different log.
func TestPersistence_NewLeaderWaitsForTermSave(t *testing.T) {
	c := newTestCluster(t, 1)
	c.elect(1)
	c.addEmpty(2)
	_, err := c.node(1).ProposeConfChange(ConfChange{Type: AddMember, ID: 2, Addr: "m2", ConfigIndex: c.node(1).config().Index})
	require.NoError(t, err)
	c.stabilize()
	c.crash(1)
	c.restart(1)
	r := c.node(1)
	r.Campaign()
	require.Equal(t, StateLeader, r.state)
	rd := r.Ready()
	assert.NotEqual(t, r.savedHard.Term, rd.HardState.Term, "the new term is not saved yet")
	assert.NotContains(t, types(rd.Messages), MsgApp)
	assert.Contains(t, types(rd.MessagesAfterSave), MsgApp)
	require.NoError(t, c.nodes[1].st.SetHardState(rd.HardState))
	require.NoError(t, c.nodes[1].st.Append(rd.Entries))
	r.Advance(rd)
	c.queue = append(c.queue, rd.MessagesAfterSave...)
	c.stabilize()
	_, err = r.Propose(Entry{Data: []byte("x")})
	require.NoError(t, err)
	rd = r.Ready()
	assert.Contains(t, types(rd.Messages), MsgApp, "once the term is durable, appends go out at once")
}
