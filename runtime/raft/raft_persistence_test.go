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

// F2: a follower whose durable suffix was replaced by a new leader's entries
// keeps lastIndexSaved pointing at the old (replaced) suffix. If it becomes
// leader before the Advance of the Ready that persists the replacement (the
// Ready contract allows Step between Ready and Advance; MessagesAfterSave go
// out before Advance), it initialises its own Match from that stale value and
// counts itself for entries it has not persisted.
func TestPersistence_TruncatedEntriesAreNotCountedAsSaved(t *testing.T) {
	members := []Member{{ID: 1, Type: Active}, {ID: 2, Type: Active}, {ID: 3, Type: Active}}
	st := NewMemoryStorage()
	ents := []Entry{BootstrapEntry(members)}
	for i := uint64(2); i <= 10; i++ {
		ents = append(ents, Entry{Index: i, Term: 2, Data: []byte("old")})
	}
	require.NoError(t, st.Append(ents))
	require.NoError(t, st.SetHardState(HardState{Term: 3, Commit: 1}))
	cfg := newTestConfig(2, st)
	cfg.DisablePreVote = true
	r, err := New(cfg)
	require.NoError(t, err)

	// Leader 3 of term 3 replaces 2..10 (uncommitted, term 2) with its NoOp at 2.
	require.NoError(t, r.Step(Message{Type: MsgApp, From: 3, To: 2, Term: 3, Index: 1, LogTerm: 1,
		Entries: []Entry{{Index: 2, Term: 3, Type: EntryNoOp}}, Commit: 1}))
	require.Equal(t, uint64(2), r.log.lastIndex())
	require.Equal(t, uint64(1), r.savedIndex(), "the replaced entries no longer count as saved")

	// Leader 3 goes away; 2 times out and campaigns in term 4.
	for r.state != StateCandidate {
		r.Tick()
	}
	rd := r.Ready()
	// Driver: save, then send MessagesAfterSave (the vote requests).
	require.NoError(t, st.Append(rd.Entries))
	require.NoError(t, st.SetHardState(rd.HardState))
	// The vote arrives before the driver calls Advance (allowed by the contract).
	require.NoError(t, r.Step(Message{Type: MsgVoteResp, From: 1, To: 2, Term: r.term}))
	require.Equal(t, StateLeader, r.state)
	t.Logf("leader: lastIndex=%d self Match=%d", r.log.lastIndex(), r.prs[2].Match)
	r.Advance(rd)

	// The NoOp (index 3) goes out at once; follower 1 acknowledges it before
	// the leader's own write completes.
	rd = r.Ready()
	require.Contains(t, types(rd.Messages), MsgApp)
	noop := rd.Entries[len(rd.Entries)-1].Index
	require.NoError(t, r.Step(Message{Type: MsgAppResp, From: 1, To: 2, Term: r.term, Index: noop}))
	stLast, _ := st.LastIndex()
	require.Less(t, r.log.committed, noop,
		"SAFETY: entry %d committed with one follower ack in a 3-voter cluster while the leader's own durable log ends at %d (self Match=%d)",
		noop, stLast, r.prs[2].Match)
}
