package node

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/transport"
)

// testMember is one member of a test cluster: its storage outlives restarts.
type testMember struct {
	id    uint64
	addr  string
	dir   string // bolt log directory; "" for memory
	store rlog.Store
	peers map[uint64]string // seed addresses for a joining member
	tr    transport.Transport
	n     *Node

	mu      sync.Mutex
	applied []raft.Entry
	// largestBatch is the most bytes of entry data (plus 32 each, the
	// core's accounting) one Apply call received.
	largestBatch int
}

func (m *testMember) appliedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.applied)
}

type testCluster struct {
	t       *testing.T
	members map[uint64]*testMember
	net     *transport.Network // memory transport, or nil for TCP
	tick    time.Duration
	cfgFn   func(*Config) // adjusts each member's configuration, if set
}

// newMemCluster starts n members on an in-memory network with memory logs.
func newMemCluster(t *testing.T, n int) *testCluster {
	return newMemClusterWith(t, n, 2*time.Millisecond, nil)
}

// newMemClusterWith is newMemCluster with a tick length and a function that
// adjusts each member's configuration.
func newMemClusterWith(t *testing.T, n int, tick time.Duration, cfgFn func(*Config)) *testCluster {
	c := &testCluster{t: t, members: map[uint64]*testMember{}, net: transport.NewNetwork(1), tick: tick, cfgFn: cfgFn}
	var ms []raft.Member
	for i := 1; i <= n; i++ {
		ms = append(ms, raft.Member{ID: uint64(i), Addr: fmt.Sprintf("mem-%d", i)})
	}
	for _, m := range ms {
		store := rlog.NewMemory()
		require.NoError(t, store.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(ms)}))
		c.members[m.ID] = &testMember{id: m.ID, addr: m.Addr, store: store}
		c.start(m.ID)
	}
	t.Cleanup(c.stopAll)
	return c
}

// newBoltTCPCluster starts n members with bolt logs in temp directories,
// talking TCP on loopback.
func newBoltTCPCluster(t *testing.T, n int) *testCluster {
	c := &testCluster{t: t, members: map[uint64]*testMember{}, tick: 10 * time.Millisecond}
	var ms []raft.Member
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		ms = append(ms, raft.Member{ID: uint64(i), Addr: addr})
	}
	base := t.TempDir()
	for _, m := range ms {
		dir := filepath.Join(base, fmt.Sprintf("m%d", m.ID))
		store, err := rlog.Open(rlog.Options{Dir: dir})
		require.NoError(t, err)
		require.NoError(t, store.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(ms)}))
		c.members[m.ID] = &testMember{id: m.ID, addr: m.Addr, dir: dir, store: store}
		c.start(m.ID)
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) start(id uint64) {
	m := c.members[id]
	var target atomic.Pointer[Node]
	handler := func(msgs []raft.Message) {
		if n := target.Load(); n != nil {
			n.Step(msgs)
		}
	}
	if c.net != nil {
		m.tr = c.net.Endpoint(id, handler)
	} else {
		if m.store == nil {
			store, err := rlog.Open(rlog.Options{Dir: m.dir})
			require.NoError(c.t, err)
			m.store = store
		}
		var err error
		m.tr, err = transport.NewTCP(transport.TCPConfig{
			ClusterID: "test", MemberID: id, ListenAddr: m.addr, Handler: handler,
			BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		})
		require.NoError(c.t, err)
	}
	cfg := raft.DefaultConfig(id, nil)
	cfg.ElectionTick = 20
	ncfg := Config{
		Raft: cfg, TickInterval: c.tick, Storage: m.store, Transport: m.tr, Peers: m.peers,
		Apply: func(ents []raft.Entry) []any {
			size := 0
			for _, e := range ents {
				size += len(e.Data) + 32
			}
			m.mu.Lock()
			m.applied = append(m.applied, ents...)
			m.largestBatch = max(m.largestBatch, size)
			m.mu.Unlock()
			return nil
		},
	}
	if c.cfgFn != nil {
		c.cfgFn(&ncfg)
	}
	n, err := Start(ncfg)
	require.NoError(c.t, err)
	m.mu.Lock()
	m.applied = nil
	m.mu.Unlock()
	m.n = n
	target.Store(n)
}

// stop stops a member abruptly: the node, then its transport, then (for
// bolt) its files, without a leadership transfer.
func (c *testCluster) stop(id uint64) {
	m := c.members[id]
	if m.n == nil {
		return
	}
	m.n.Stop()
	require.NoError(c.t, m.tr.Close())
	if m.dir != "" {
		require.NoError(c.t, m.store.Close())
		m.store = nil
	}
	m.n = nil
}

func (c *testCluster) stopAll() {
	for id := range c.members {
		c.stop(id)
	}
}

// waitLeader waits until one running member leads and all running members
// agree on it.
func (c *testCluster) waitLeader(timeout time.Duration) uint64 {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, m := range c.members {
			if m.n == nil {
				continue
			}
			s := m.n.Status()
			if lead == 0 {
				lead = s.SoftState.Lead
			}
			if s.SoftState.Lead == 0 || s.SoftState.Lead != lead {
				agree = false
			}
		}
		if agree && lead != 0 && c.members[lead].n != nil {
			return lead
		}
		time.Sleep(c.tick)
	}
	c.t.Fatalf("no agreed leader within %v", timeout)
	return 0
}

// eventually polls cond until it holds or the deadline passes.
func (c *testCluster) eventually(timeout time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(c.tick)
	}
}

// proposeMany proposes count entries from workers goroutines through
// whichever member leads, retrying on leader changes.
func (c *testCluster) proposeMany(ctx context.Context, prefix string, count, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(count) {
					return
				}
				data := []byte(fmt.Sprintf("%s-%d", prefix, i))
				for {
					if ctx.Err() != nil {
						errc <- ctx.Err()
						return
					}
					lead := c.currentLeader()
					if lead == nil {
						time.Sleep(c.tick)
						continue
					}
					if _, err := lead.Propose(ctx, data); err == nil {
						break
					}
					time.Sleep(c.tick)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(c.t, err)
	}
}

func (c *testCluster) currentLeader() *Node {
	for _, m := range c.members {
		if n := m.n; n != nil && n.Status().SoftState.State == raft.StateLeader {
			return n
		}
	}
	return nil
}

// logOf reads a member's whole log from its storage.
func logOf(t *testing.T, s raft.Storage) []raft.Entry {
	first, err := s.FirstIndex()
	require.NoError(t, err)
	last, err := s.LastIndex()
	require.NoError(t, err)
	var out []raft.Entry
	for lo := first; lo <= last; {
		ents, err := s.Entries(lo, last+1, 4<<20)
		require.NoError(t, err)
		out = append(out, ents...)
		lo = ents[len(ents)-1].Index + 1
	}
	return out
}
