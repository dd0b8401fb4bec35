package raft

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// testNode is one member of an in-memory test cluster driven synchronously.
type testNode struct {
	r       *Raft
	st      *MemoryStorage
	applied []Entry
	reads   []ReadState
	down    bool
	// With Config.AsyncStorageWrites: Readys handed out whose write has not
	// happened (pending) and those written but not reported (written), in
	// the order handed out. A crash loses pending; written is in st.
	pending []Ready
	written []Ready
}

// testCluster drives cores over a message queue the test controls: it decides
// what is delivered, dropped, duplicated or reordered.
type testCluster struct {
	t      testing.TB
	ids    []uint64
	nodes  map[uint64]*testNode
	queue  []Message
	cut    map[[2]uint64]bool // (from, to) pairs that lose messages
	cfgFn  func(*Config)
	now    int64
	stepFn func(m *Message) bool // optional filter: false drops; may rewrite m
}

func newTestConfig(id uint64, st Storage) Config {
	c := DefaultConfig(id, st)
	c.ElectionTick = 10
	c.HeartbeatTick = 1
	c.Rand = rand.New(rand.NewPCG(id, 42))
	return c
}

// newTestCluster bootstraps n Active members with IDs 1..n.
func newTestCluster(t testing.TB, n int, opts ...func(*Config)) *testCluster {
	c := &testCluster{t: t, nodes: map[uint64]*testNode{}, cut: map[[2]uint64]bool{}}
	c.cfgFn = func(cfg *Config) {
		for _, o := range opts {
			o(cfg)
		}
	}
	var members []Member
	for i := 1; i <= n; i++ {
		members = append(members, Member{ID: uint64(i), Type: Active, Addr: fmt.Sprintf("m%d", i)})
	}
	boot := BootstrapEntry(members)
	for i := 1; i <= n; i++ {
		id := uint64(i)
		st := NewMemoryStorage()
		require.NoError(t, st.Append([]Entry{boot}))
		require.NoError(t, st.SetHardState(HardState{Term: 1}))
		c.ids = append(c.ids, id)
		c.nodes[id] = &testNode{st: st}
		c.start(id)
	}
	return c
}

// addEmpty adds a member with empty storage (a new member about to join).
func (c *testCluster) addEmpty(id uint64) {
	c.ids = append(c.ids, id)
	c.nodes[id] = &testNode{st: NewMemoryStorage()}
	c.start(id)
}

func (c *testCluster) start(id uint64) {
	n := c.nodes[id]
	cfg := newTestConfig(id, n.st)
	cfg.Now = func() int64 { return c.now }
	c.cfgFn(&cfg)
	r, err := New(cfg)
	require.NoError(c.t, err)
	n.r = r
	n.down = false
	// Entries already applied survive a restart in the test's state machine
	// only up to what the restarted core will hand out again.
	n.applied = n.applied[:0]
	n.r.log.applied, n.r.log.applying = n.r.log.firstIndex()-1, n.r.log.firstIndex()-1
}

// crash stops a member, losing everything it had not persisted.
func (c *testCluster) crash(id uint64) {
	n := c.nodes[id]
	n.down = true
	n.pending, n.written = nil, nil
}

func (c *testCluster) restart(id uint64) {
	c.start(id)
}

func (c *testCluster) node(id uint64) *Raft { return c.nodes[id].r }

// process handles one member's Ready like a driver would. An asynchronous
// driver's writes are all completed and reported before it returns.
func (c *testCluster) process(id uint64) {
	n := c.nodes[id]
	if n.down {
		return
	}
	if n.r.cfg.AsyncStorageWrites {
		c.readyAsync(id)
		c.writeAsync(id, len(n.pending))
		c.reportAsync(id, len(n.written))
		return
	}
	if !n.r.HasReady() {
		return
	}
	rd := n.r.Ready()
	c.queue = append(c.queue, rd.Messages...)
	if rd.Snapshot != nil {
		require.NoError(c.t, n.st.ApplySnapshot(*rd.Snapshot))
		n.applied = n.applied[:0]
	}
	require.NoError(c.t, n.st.Append(rd.Entries))
	if !rd.HardState.IsEmpty() {
		require.NoError(c.t, n.st.SetHardState(rd.HardState))
	}
	c.queue = append(c.queue, rd.MessagesAfterSave...)
	n.applied = append(n.applied, rd.CommittedEntries...)
	n.reads = append(n.reads, rd.ReadStates...)
	n.r.Advance(rd)
}

// readyAsync takes a Ready like an asynchronous driver: its messages go out,
// its committed entries are applied at once, its write is queued.
func (c *testCluster) readyAsync(id uint64) {
	n := c.nodes[id]
	if n.down || !n.r.HasReady() {
		return
	}
	rd := n.r.Ready()
	c.queue = append(c.queue, rd.Messages...)
	n.applied = append(n.applied, rd.CommittedEntries...)
	n.reads = append(n.reads, rd.ReadStates...)
	n.r.AdvanceApply(rd)
	n.pending = append(n.pending, rd)
}

// writeAsync makes the first k queued writes durable and sends their
// MessagesAfterSave, without telling the core yet.
func (c *testCluster) writeAsync(id uint64, k int) {
	n := c.nodes[id]
	for _, rd := range n.pending[:k] {
		if rd.Snapshot != nil {
			require.NoError(c.t, n.st.ApplySnapshot(*rd.Snapshot))
			n.applied = n.applied[:0]
		}
		require.NoError(c.t, n.st.Append(rd.Entries))
		if !rd.HardState.IsEmpty() {
			require.NoError(c.t, n.st.SetHardState(rd.HardState))
		}
		c.queue = append(c.queue, rd.MessagesAfterSave...)
		n.written = append(n.written, rd)
	}
	n.pending = n.pending[k:]
}

// reportAsync reports the first k written Readys to the core.
func (c *testCluster) reportAsync(id uint64, k int) {
	n := c.nodes[id]
	for _, rd := range n.written[:k] {
		n.r.AdvanceWrite(rd)
	}
	n.written = n.written[k:]
}

func (c *testCluster) processAll() {
	for _, id := range c.ids {
		c.process(id)
	}
}

func (c *testCluster) deliver(m Message) {
	n := c.nodes[m.To]
	if n == nil || n.down || c.cut[[2]uint64{m.From, m.To}] {
		return
	}
	if c.stepFn != nil && !c.stepFn(&m) {
		return
	}
	require.NoError(c.t, n.r.Step(m))
}

// stabilize delivers messages and processes Readys until nothing moves.
func (c *testCluster) stabilize() {
	for i := 0; i < 10000; i++ {
		c.processAll()
		if len(c.queue) == 0 {
			return
		}
		q := c.queue
		c.queue = nil
		for _, m := range q {
			c.deliver(m)
		}
	}
	c.t.Fatalf("cluster did not stabilize")
}

func (c *testCluster) tickAll(n int) {
	for range n {
		c.now += 10e6
		for _, id := range c.ids {
			if !c.nodes[id].down {
				c.node(id).Tick()
			}
		}
		c.stabilize()
	}
}

// isolate cuts id off from everyone in both directions.
func (c *testCluster) isolate(id uint64) {
	for _, o := range c.ids {
		if o != id {
			c.cut[[2]uint64{id, o}] = true
			c.cut[[2]uint64{o, id}] = true
		}
	}
}

// partition splits the cluster into the given groups.
func (c *testCluster) partition(groups ...[]uint64) {
	c.cut = map[[2]uint64]bool{}
	group := map[uint64]int{}
	for g, ids := range groups {
		for _, id := range ids {
			group[id] = g
		}
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			if ga, ok := group[a]; ok {
				if gb, ok := group[b]; ok && ga == gb {
					continue
				}
			}
			if a != b {
				c.cut[[2]uint64{a, b}] = true
			}
		}
	}
}

func (c *testCluster) heal() { c.cut = map[[2]uint64]bool{} }

// leader returns the leader with the highest term among live members, or 0.
func (c *testCluster) leader() uint64 {
	var lead, term uint64
	for _, id := range c.ids {
		n := c.nodes[id]
		if !n.down && n.r.state == StateLeader && n.r.term >= term {
			lead, term = id, n.r.term
		}
	}
	return lead
}

// elect makes id campaign and checks that it wins. It tries a few times:
// a first campaign may only bring its term up to date.
func (c *testCluster) elect(id uint64) {
	for range 3 {
		c.node(id).Campaign()
		c.stabilize()
		if c.node(id).state == StateLeader {
			return
		}
	}
	require.Equal(c.t, StateLeader, c.node(id).state, "member %d should have won", id)
}

// waitLeader ticks until some live member leads, within a deadline in ticks.
func (c *testCluster) waitLeader(maxTicks int) uint64 {
	for range maxTicks {
		if l := c.leader(); l != 0 {
			return l
		}
		c.tickAll(1)
	}
	c.t.Fatalf("no leader after %d ticks", maxTicks)
	return 0
}

func (c *testCluster) propose(id uint64, data string) uint64 {
	idx, err := c.node(id).Propose(Entry{Data: []byte(data)})
	require.NoError(c.t, err)
	return idx
}

// appliedData returns the payloads of the normal entries a member applied.
func (c *testCluster) appliedData(id uint64) []string {
	var out []string
	for _, e := range c.nodes[id].applied {
		if e.Type == EntryNormal {
			out = append(out, string(e.Data))
		}
	}
	return out
}

func withoutPreVote(c *Config)     { c.DisablePreVote = true }
func withoutCheckQuorum(c *Config) { c.DisableCheckQuorum = true }
