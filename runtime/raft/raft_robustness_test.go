package raft

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Messages no correct peer sends must not make the core panic: a buggy or
// stale peer cannot take a member down (found by review; see the issue note).

func stepRecover(r *Raft, m Message) (p any) {
	defer func() { p = recover() }()
	_ = r.Step(m)
	return nil
}

// F3: a buggy peer's MsgAppResp acknowledging an index beyond the leader's log.
func TestRobustness_PanicAppRespBeyondLastIndex(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(1)
	p := stepRecover(r, Message{Type: MsgAppResp, From: 2, To: 1, Term: r.term, Index: r.log.lastIndex() + 100})
	require.Nil(t, p, "leader panicked: %v", p)
}

// F4a: MsgApp whose entries do not start at Index+1.
func TestRobustness_PanicMsgAppGap(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(2)
	last := r.log.lastIndex()
	p := stepRecover(r, Message{Type: MsgApp, From: 1, To: 2, Term: r.term, Index: last, LogTerm: r.log.lastTerm(),
		Entries: []Entry{{Index: last + 5, Term: r.term}}})
	require.Nil(t, p, "follower panicked: %v", p)
}

// F4b: MsgApp whose entries restate a committed index with another term.
func TestRobustness_PanicMsgAppBelowCommit(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.propose(1, "a")
	c.stabilize()
	r := c.node(2)
	com := r.log.committed
	p := stepRecover(r, Message{Type: MsgApp, From: 1, To: 2, Term: r.term, Index: com, LogTerm: r.log.zeroTermOnMissing(com),
		Entries: []Entry{{Index: com, Term: r.term + 7}}})
	require.Nil(t, p, "follower panicked: %v", p)
}

// F4c: garbage configuration entry.
func TestRobustness_PanicMsgAppBadConfig(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(2)
	last := r.log.lastIndex()
	p := stepRecover(r, Message{Type: MsgApp, From: 1, To: 2, Term: r.term, Index: last, LogTerm: r.log.lastTerm(),
		Entries: []Entry{{Index: last + 1, Term: r.term, Type: EntryConfig, Data: []byte{9}}}})
	require.Nil(t, p, "follower panicked: %v", p)
}

// F4d: MsgSnap at index MaxUint64 overflows unstable.offset; the next vote request panics.
func TestRobustness_PanicSnapMaxIndex(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(2)
	p := stepRecover(r, Message{Type: MsgSnap, From: 1, To: 2, Term: r.term,
		Snapshot: &Snapshot{Meta: SnapshotMeta{Index: ^uint64(0), Term: r.term, Config: r.config().Clone()}}})
	require.Nil(t, p)
	func() {
		defer func() { p = recover() }()
		for range 3 * r.cfg.ElectionTick {
			r.Tick() // times out and campaigns: lastTerm()
		}
	}()
	require.Nil(t, p, "follower panicked: %v", p)
}

// F5: a lost MsgSnap leaves the follower's Progress in StateSnapshot for ever
// unless the driver calls ReportSnapshot; runtime/node never calls it.
func TestRobustness_LostSnapshotIsResent(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	c.isolate(3)
	for i := 0; i < 5; i++ {
		c.propose(1, "a")
		c.stabilize()
	}
	r1 := c.node(1)
	require.NoError(t, c.nodes[1].st.Compact(r1.log.committed, r1.config().Clone(), nil))
	c.heal()
	dropped := 0
	c.stepFn = func(m *Message) bool {
		if m.Type == MsgSnap && dropped == 0 {
			dropped++
			return false
		}
		return true
	}
	c.tickAll(100)
	require.Equal(t, 1, dropped)
	t.Logf("progress of 3: %s", r1.prs[3])
	require.Equal(t, r1.log.committed, c.node(3).log.committed, "follower 3 never caught up after one lost MsgSnap")
}
