package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Config.AsyncStorageWrites: a driver that persists Readys on the side while
// it keeps stepping. Its writes complete later (writeAsync) and are reported
// later still (reportAsync).

func withAsync(c *Config) { c.AsyncStorageWrites = true }

func indexes(ents []Entry) []uint64 {
	var out []uint64
	for _, e := range ents {
		out = append(out, e.Index)
	}
	return out
}

// Entries handed out for writing are not handed out again while in flight;
// each Ready carries only what came after the previous one.
func TestAsync_ReadyHandsOutEachEntryOnce(t *testing.T) {
	c := newTestCluster(t, 3, withAsync)
	c.elect(1)
	r := c.node(1)
	a := c.propose(1, "a")
	rd1 := r.Ready()
	assert.Equal(t, []uint64{a}, indexes(rd1.Entries))
	b := c.propose(1, "b")
	rd2 := r.Ready()
	assert.Equal(t, []uint64{b}, indexes(rd2.Entries), "only the entry proposed since the last Ready")
	assert.False(t, r.HasReady() && len(r.Ready().Entries) > 0, "nothing left to hand out")
	require.NoError(t, c.nodes[1].st.Append(rd1.Entries))
	r.AdvanceWrite(rd1)
	assert.Equal(t, a, r.savedIndex())
	require.NoError(t, c.nodes[1].st.Append(rd2.Entries))
	r.AdvanceWrite(rd2)
	assert.Equal(t, b, r.savedIndex())
}

// The leader counts itself only once its own write is durable; two
// followers' acknowledgements commit without it (a quorum of durable copies),
// but the leader applies the entry only once it is durable here too.
func TestAsync_LeaderCommitsOnFollowersWhileItsWriteIsInFlight(t *testing.T) {
	c := newTestCluster(t, 3, withAsync)
	c.elect(1)
	r := c.node(1)
	idx := c.propose(1, "x")
	c.readyAsync(1) // the leader's write of idx is in flight from here on
	require.Len(t, c.nodes[1].pending, 1)
	deliverTo := func(id uint64) {
		q := c.queue
		c.queue = nil
		for _, m := range q {
			if m.To == id {
				c.deliver(m)
			} else {
				c.queue = append(c.queue, m)
			}
		}
	}
	deliverTo(2)
	c.process(2) // follower 2 saves and acknowledges
	deliverTo(1)
	assert.Less(t, r.log.committed, idx, "one follower is not a quorum while the leader's own write is in flight")

	deliverTo(3)
	c.process(3)
	deliverTo(1)
	assert.Equal(t, idx, r.log.committed, "two followers' durable copies are a quorum")
	rd := r.Ready()
	assert.NotContains(t, indexes(rd.CommittedEntries), idx, "not applied before it is durable on the leader")
	c.nodes[1].pending = append(c.nodes[1].pending, rd)

	c.writeAsync(1, len(c.nodes[1].pending))
	c.reportAsync(1, len(c.nodes[1].written))
	require.True(t, r.HasReady())
	rd = r.Ready()
	assert.Contains(t, indexes(rd.CommittedEntries), idx)
}

// A follower's acknowledgement waits for its write: it is among the Ready's
// MessagesAfterSave, which the writer sends once the write is durable.
func TestAsync_FollowerAcknowledgesAfterItsWrite(t *testing.T) {
	c := newTestCluster(t, 3, withAsync)
	c.elect(1)
	f := c.node(2)
	app := func(data string) Message {
		return Message{Type: MsgApp, From: 1, To: 2, Term: f.term, Index: f.log.lastIndex(), LogTerm: f.log.lastTerm(),
			Entries: []Entry{{Term: f.term, Index: f.log.lastIndex() + 1, Data: []byte(data)}}, Commit: f.log.committed}
	}
	require.NoError(t, f.Step(app("a")))
	rd1 := f.Ready()
	assert.NotContains(t, types(rd1.Messages), MsgAppResp)
	assert.Contains(t, types(rd1.MessagesAfterSave), MsgAppResp)
	require.NoError(t, f.Step(app("b")))
	rd2 := f.Ready()
	require.Len(t, rd2.Entries, 1)
	assert.Equal(t, "b", string(rd2.Entries[0].Data))
	assert.Contains(t, types(rd2.MessagesAfterSave), MsgAppResp)
	assert.Equal(t, rd1.Entries[0].Index-1, f.savedIndex(), "nothing is durable before a write is reported")
}

// A follower whose in-flight write holds entries that a new leader then
// replaces does not take them for durable when that write is reported; they
// count once the replacement's write is reported.
func TestAsync_ReplacedEntriesInFlightAreNotTakenForDurable(t *testing.T) {
	members := []Member{{ID: 1, Type: Active}, {ID: 2, Type: Active}, {ID: 3, Type: Active}}
	st := NewMemoryStorage()
	require.NoError(t, st.Append([]Entry{BootstrapEntry(members)}))
	require.NoError(t, st.SetHardState(HardState{Term: 2, Commit: 1}))
	cfg := newTestConfig(2, st)
	cfg.AsyncStorageWrites = true
	r, err := New(cfg)
	require.NoError(t, err)

	// Leader 1 of term 2 sends 2..6; the write is handed out, not done.
	var old []Entry
	for i := uint64(2); i <= 6; i++ {
		old = append(old, Entry{Index: i, Term: 2, Data: []byte("old")})
	}
	require.NoError(t, r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 2, Index: 1, LogTerm: 1, Entries: old, Commit: 1}))
	rdOld := r.Ready()
	require.Len(t, rdOld.Entries, 5)

	// Leader 3 of term 3 replaces 4.. with its own entries.
	require.NoError(t, r.Step(Message{Type: MsgApp, From: 3, To: 2, Term: 3, Index: 3, LogTerm: 2,
		Entries: []Entry{{Index: 4, Term: 3, Data: []byte("new")}}, Commit: 4}))
	rdNew := r.Ready()
	assert.Equal(t, []uint64{4}, indexes(rdNew.Entries), "only the replacement is handed out")
	assert.Empty(t, rdNew.CommittedEntries, "committed entries wait until they are durable here")

	require.NoError(t, st.Append(rdOld.Entries))
	r.AdvanceWrite(rdOld)
	assert.Equal(t, uint64(1), r.savedIndex(), "the reported write's last entry was replaced: nothing is known durable")
	require.NoError(t, st.Append(rdNew.Entries))
	require.NoError(t, st.SetHardState(rdNew.HardState))
	r.AdvanceWrite(rdNew)
	assert.Equal(t, uint64(4), r.savedIndex())
	rd := r.Ready()
	assert.Equal(t, []uint64{2, 3, 4}, indexes(rd.CommittedEntries))
	assert.Equal(t, "new", string(rd.CommittedEntries[2].Data))
}

// A leader whose writer stops finishing writes steps down while its loop
// keeps ticking and stepping, as with a synchronous driver.
func TestAsync_StalledWriterLeaderStepsDown(t *testing.T) {
	c := newTestCluster(t, 3, withAsync)
	c.elect(1)
	r := c.node(1)
	c.propose(1, "a")
	for range 2 * r.cfg.ElectionTick {
		r.Tick()
		c.readyAsync(1) // handed out, never written
		q := c.queue
		c.queue = nil
		for _, m := range q {
			c.deliver(m)
		}
		c.process(2)
		c.process(3)
		for _, m := range c.queue {
			if m.To == 1 {
				c.deliver(m)
			}
		}
		c.queue = nil
	}
	require.Equal(t, StateFollower, r.state, "a leader whose writes never finish must not keep leading")
}

// A vote is sent only once it is durable: the grant waits in
// MessagesAfterSave behind the write of the hard state that records it.
func TestAsync_VoteWaitsForItsWrite(t *testing.T) {
	c := newTestCluster(t, 3, withAsync, withoutPreVote)
	r := c.node(2)
	require.NoError(t, r.Step(Message{Type: MsgVote, From: 1, To: 2, Term: 2, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm()}))
	rd := r.Ready()
	assert.Equal(t, uint64(1), rd.HardState.Vote)
	assert.NotContains(t, types(rd.Messages), MsgVoteResp)
	assert.Contains(t, types(rd.MessagesAfterSave), MsgVoteResp)
	assert.False(t, r.HasReady(), "the hard state in flight is not handed out twice")
}
