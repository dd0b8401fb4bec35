package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/transport"
)

// slowReadStore charges CPU time per entry read, as bolt does (a
// transaction and a decode each). It spins rather than sleeps: a sleep
// lasts at least a timer tick, far more than one entry's read.
type slowReadStore struct {
	rlog.Store
	perEntry time.Duration
}

func (s *slowReadStore) Entries(lo, hi, maxSize uint64) ([]raft.Entry, error) {
	ents, err := s.Store.Entries(lo, hi, maxSize)
	for start, d := time.Now(), time.Duration(len(ents))*s.perEntry; time.Since(start) < d; {
	}
	return ents, err
}

// A follower thousands of entries behind catches up from the leader's
// storage (not its memory: the leader restarted) while the leader keeps
// leading: its loop reads a bounded share per iteration and keeps sending
// heartbeats, so nobody times out and campaigns. Reading the whole backlog
// in one step stalled the leader for longer than an election timeout.
func TestNode_FarBehindFollowerCatchesUpWithoutElections(t *testing.T) {
	const backlog = 6000
	c := &testCluster{t: t, members: map[uint64]*testMember{}, net: transport.NewNetwork(1), tick: 20 * time.Millisecond} // elections in 400–800 ms: room for a loaded CI machine; the loop stalls ~55 ms at most per iteration
	var ms []raft.Member
	for i := uint64(1); i <= 3; i++ {
		ms = append(ms, raft.Member{ID: i, Addr: fmt.Sprintf("mem-%d", i)})
	}
	for _, m := range ms {
		mem := rlog.NewMemory()
		require.NoError(t, mem.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(ms)}))
		c.members[m.ID] = &testMember{id: m.ID, addr: m.Addr, store: &slowReadStore{Store: mem, perEntry: 100 * time.Microsecond}}
		c.start(m.ID)
	}
	t.Cleanup(c.stopAll)
	c.waitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c.stop(3)
	c.proposeMany(ctx, "backlog", backlog, 8)
	// Restart the others: the backlog is in their storage only now.
	c.stop(1)
	c.stop(2)
	c.start(1)
	c.start(2)
	lead := c.waitLeader(10 * time.Second)
	term := c.members[lead].n.Status().HardState.Term
	last := c.members[lead].n.Status().LastIndex
	c.eventually(30*time.Second, "the others to apply the backlog again", func() bool {
		return c.members[1].n.Status().Applied >= last && c.members[2].n.Status().Applied >= last
	})

	c.start(3)
	c.eventually(30*time.Second, "member 3 to catch up", func() bool {
		return c.members[3].n.Status().Applied >= last
	})
	for id, m := range c.members {
		st := m.n.Status()
		assert.Equal(t, term, st.HardState.Term, "member %d: an election happened during the catch-up", id)
		assert.Equal(t, lead, st.SoftState.Lead, "member %d follows another leader", id)
	}
	assert.GreaterOrEqual(t, c.members[3].appliedCount(), backlog)
}

// A member re-applying its log after a restart gets it in batches of at
// most MaxApplyBytes (default 64 KiB), so its loop ticks and answers in
// between; it once took 4 MiB per batch.
func TestNode_ApplyBatchesAreBounded(t *testing.T) {
	c := newMemCluster(t, 1)
	c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	payload := make([]byte, 1024)
	for range 200 {
		_, err := c.members[1].n.Propose(ctx, payload)
		require.NoError(t, err)
	}
	last := c.members[1].n.Status().LastIndex
	c.stop(1)
	c.start(1)
	c.eventually(10*time.Second, "the log to be applied again", func() bool {
		return c.members[1].n.Status().Applied >= last
	})
	m := c.members[1]
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.GreaterOrEqual(t, len(m.applied), 200)
	assert.LessOrEqual(t, m.largestBatch, 64<<10, "one Apply call took more than MaxApplyBytes")
	assert.Greater(t, m.largestBatch, 32<<10, "batches are not needlessly small")
}
