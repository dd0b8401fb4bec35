// Package copycattest runs in-memory Copycat clusters for tests: members on
// an in-memory network with memory logs, clients connected through
// in-memory pipes, and fault injection — partitions, message loss and delay,
// crashes and restarts from each member's own storage.
//
//	cluster := copycattest.NewCluster(t, 3, counter.CounterType)
//	cli := cluster.Client()
//	ctr, err := counter.OpenCounter(ctx, cli, "hits")
//
// Everything is torn down by t.Cleanup.
package copycattest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
	"github.com/copycat-go/copycat/runtime/transport"
)

// Timing of test clusters: elections in 200–400 ms (fast, yet with room for
// the scheduling delays of -race on two loaded cores), and session timeouts
// as short as twice that.
const (
	TickInterval      = 10 * time.Millisecond
	ElectionTicks     = 20
	MinSessionTimeout = 500 * time.Millisecond
)

// Options tunes a test cluster's members.
type Options struct {
	// SnapshotEntries and TrailingEntries set log compaction (see
	// server.Config); zero means the server's default. Small values make
	// tests exercise images, cleaning and snapshot streams.
	SnapshotEntries, TrailingEntries int
	// SnapshotBytes takes an image once the entries applied since the last
	// one hold this many bytes (see server.Config.SnapshotBytes).
	SnapshotBytes int64
	// NoCompaction keeps whole logs.
	NoCompaction bool
	// Disk keeps each member's log in a directory under the test's temporary
	// directory (runtime/log, fsync on) instead of in memory; Crash and
	// Restart then go through the files. Member.Dir names it.
	Disk bool
	// SegmentSize sets the log's segment size with Disk (server.Config).
	SegmentSize int64
}

// Cluster is an in-memory cluster.
type Cluster struct {
	t       testing.TB
	opts    Options
	types   []*runtime.ResourceType
	net     *transport.Network
	id      string
	logger  *slog.Logger
	mu      sync.Mutex
	members map[uint64]*Member
	ids     []uint64
	clients []*client.Client
	gates   map[*client.Client]*gate
	// clientCut lists members clients cannot reach.
	clientCut map[uint64]bool
}

// gate is one client's link to the cluster, which a test can cut as if the
// client's process died.
type gate struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

// Member is one member of a test cluster.
type Member struct {
	ID    uint64
	Addr  string
	c     *Cluster
	store *rlog.Memory   // nil with Options.Disk
	dir   string         // with Options.Disk
	srv   *server.Server // guarded by c.mu
}

// Dir returns the member's data directory (Options.Disk), or "".
func (m *Member) Dir() string { return m.dir }

// Server returns the member's running server, or nil while it is crashed.
func (m *Member) Server() *server.Server {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	return m.srv
}

func (c *Cluster) setServer(m *Member, srv *server.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.srv = srv
}

// NewCluster starts n members hosting the given resource types and waits for
// a leader.
func NewCluster(t testing.TB, n int, types ...*runtime.ResourceType) *Cluster {
	t.Helper()
	return NewClusterWith(t, n, Options{}, types...)
}

// NewClusterWith is NewCluster with options.
func NewClusterWith(t testing.TB, n int, opts Options, types ...*runtime.ResourceType) *Cluster {
	t.Helper()
	c := &Cluster{
		t: t, types: types, opts: opts, net: transport.NewNetwork(1), id: ClusterID,
		members: map[uint64]*Member{}, clientCut: map[uint64]bool{}, gates: map[*client.Client]*gate{},
		logger: slog.New(slog.DiscardHandler),
	}
	if os.Getenv("COPYCAT_TEST_LOG") != "" {
		c.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var founding []raft.Member
	for i := 1; i <= n; i++ {
		id := uint64(i)
		m := c.newMember(id)
		c.members[id] = m
		c.ids = append(c.ids, id)
		founding = append(founding, raft.Member{ID: id, Addr: m.Addr})
	}
	for _, id := range c.ids {
		srv := c.newServer(c.members[id], nil)
		if err := srv.Bootstrap(founding); err != nil {
			t.Fatalf("copycattest: bootstrap member %d: %v", id, err)
		}
		c.setServer(c.members[id], srv)
	}
	t.Cleanup(c.Close)
	c.WaitLeader(10 * time.Second)
	return c
}

func addrOf(id uint64) string { return fmt.Sprintf("member-%d", id) }

// ClusterID is the cluster ID of every test cluster.
const ClusterID = "copycattest"

func (c *Cluster) newMember(id uint64) *Member {
	m := &Member{ID: id, Addr: addrOf(id), c: c}
	if c.opts.Disk {
		m.dir = filepath.Join(c.t.TempDir(), fmt.Sprintf("member-%d", id))
	} else {
		m.store = rlog.NewMemory()
	}
	return m
}

func (c *Cluster) newServer(m *Member, peers map[uint64]string) *server.Server {
	var store rlog.Store
	if m.store != nil {
		store = m.store
	}
	srv, err := server.New(server.Config{
		ID: m.ID, ClusterID: c.id, Addr: m.Addr, Storage: store, DataDir: m.dir, Peers: peers,
		Transport:    func(h transport.Handler) transport.Transport { return c.net.Endpoint(m.ID, h) },
		TickInterval: TickInterval, ElectionTicks: ElectionTicks, HeartbeatTicks: 2,
		MinSessionTimeout: MinSessionTimeout, Logger: c.logger.With("member", m.ID),
		SnapshotEntries: c.opts.SnapshotEntries, TrailingEntries: c.opts.TrailingEntries, SnapshotBytes: c.opts.SnapshotBytes, NoCompaction: c.opts.NoCompaction,
		SegmentSize: c.opts.SegmentSize,
	}, c.types...)
	if err != nil {
		c.t.Fatalf("copycattest: member %d: %v", m.ID, err)
	}
	return srv
}

// Close stops every client and member.
func (c *Cluster) Close() {
	c.mu.Lock()
	clients := c.clients
	c.clients = nil
	c.mu.Unlock()
	for _, cl := range clients {
		done := make(chan struct{})
		go func() { cl.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
		}
	}
	for _, id := range c.IDs() {
		c.Crash(id)
	}
}

// IDs returns the member IDs.
func (c *Cluster) IDs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.ids...)
}

// Member returns a member.
func (c *Cluster) Member(id uint64) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[id]
}

// Addrs returns every member's address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, id := range c.IDs() {
		out = append(out, addrOf(id))
	}
	return out
}

// dial connects a client to a member through an in-memory pipe.
func (c *Cluster) dial(g *gate, addr string) (net.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return nil, fmt.Errorf("copycattest: this client is cut off")
	}
	nc, err := c.dialMember(addr)
	if err == nil {
		g.conns = append(g.conns, nc)
	}
	return nc, err
}

// Dial opens a raw connection to a member's client port (for protocol-level
// tests); the caller performs the handshake.
func (c *Cluster) Dial(addr string) (net.Conn, error) { return c.dialMember(addr) }

func (c *Cluster) dialMember(addr string) (net.Conn, error) {
	c.mu.Lock()
	var srv *server.Server
	for _, x := range c.members {
		if x.Addr == addr && !c.clientCut[x.ID] {
			srv = x.srv
		}
	}
	c.mu.Unlock()
	if srv == nil {
		return nil, fmt.Errorf("copycattest: %s unreachable", addr)
	}
	cl, sv := net.Pipe()
	go srv.ServeConn(sv)
	return cl, nil
}

// Client returns a new client with an open session; it is closed on cleanup.
func (c *Cluster) Client(opts ...client.Option) *client.Client {
	c.t.Helper()
	cl, err := c.NewClient(opts...)
	if err != nil {
		c.t.Fatalf("copycattest: client: %v", err)
	}
	return cl
}

// NewClient is Client returning its error.
func (c *Cluster) NewClient(opts ...client.Option) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := &gate{}
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return c.dial(g, addr) }
	all := append([]client.Option{client.WithClusterID(c.id), client.WithDialer(dial),
		client.WithBackoff(2*time.Millisecond, 50*time.Millisecond), client.WithLogger(c.logger)}, opts...)
	cl, err := client.Connect(ctx, c.Addrs(), all...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.clients = append(c.clients, cl)
	c.gates[cl] = g
	c.mu.Unlock()
	return cl, nil
}

// CutClient cuts a client off from every member, as if its process died or
// its network failed: its connections break and it cannot make new ones. Its
// session stays open until the cluster expires it. ReconnectClient undoes it.
func (c *Cluster) CutClient(cl *client.Client) {
	c.mu.Lock()
	g := c.gates[cl]
	c.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dead = true
	for _, nc := range g.conns {
		nc.Close()
	}
	g.conns = nil
}

// ReconnectClient lets a cut client reach the members again.
func (c *Cluster) ReconnectClient(cl *client.Client) {
	c.mu.Lock()
	g := c.gates[cl]
	c.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dead = false
}

// Leader returns the ID of the member that leads, or 0.
func (c *Cluster) Leader() uint64 {
	var lead, term uint64
	for _, id := range c.IDs() {
		if srv := c.Member(id).Server(); srv != nil {
			st := srv.Status()
			if st.SoftState.State == raft.StateLeader && st.HardState.Term >= term {
				lead, term = id, st.HardState.Term
			}
		}
	}
	return lead
}

// WaitLeader waits until a member leads and every running member connected
// to it agrees.
func (c *Cluster) WaitLeader(timeout time.Duration) uint64 {
	c.t.Helper()
	var lead uint64
	c.Eventually(timeout, "a leader", func() bool {
		lead = c.Leader()
		return lead != 0
	})
	return lead
}

// Eventually polls cond until it holds, failing the test after timeout.
func (c *Cluster) Eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("copycattest: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(TickInterval)
	}
}

// Partition splits the members into groups that cannot talk to each other.
// Clients still reach every member.
func (c *Cluster) Partition(groups ...[]uint64) { c.net.Partition(groups...) }

// Isolate cuts a member off from the other members.
func (c *Cluster) Isolate(id uint64) { c.net.Isolate(id) }

// Heal removes partitions and message loss.
func (c *Cluster) Heal() { c.net.Heal() }

// CutClients makes a member unreachable for clients (new connections fail;
// existing ones are unaffected until they break).
func (c *Cluster) CutClients(id uint64, cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clientCut[id] = cut
}

// Drop loses a fraction p of the messages from one member to another.
func (c *Cluster) Drop(from, to uint64, p float64) { c.net.Drop(from, to, p) }

// Delay delays messages from one member to another.
func (c *Cluster) Delay(from, to uint64, min, max time.Duration) { c.net.Delay(from, to, min, max) }

// Crash stops a member abruptly, as if its process died: what it had saved
// stays in its storage, its connections break.
func (c *Cluster) Crash(id uint64) {
	m := c.Member(id)
	if srv := m.Server(); srv != nil {
		c.setServer(m, nil)
		_ = srv.Stop()
	}
}

// Restart starts a crashed member again from its own storage.
func (c *Cluster) Restart(id uint64) {
	m := c.Member(id)
	if m.Server() != nil {
		return
	}
	srv := c.newServer(m, nil)
	if err := srv.Start(); err != nil {
		c.t.Fatalf("copycattest: restart member %d: %v", id, err)
	}
	c.setServer(m, srv)
}

// AddMember starts a new member with an empty log and adds it to the
// cluster as PASSIVE through the leader; promote it with the leader's server.
func (c *Cluster) AddMember(ctx context.Context) (*Member, error) {
	ids := c.IDs()
	id := ids[len(ids)-1] + 1
	m := c.newMember(id)
	peers := map[uint64]string{}
	for _, id := range c.IDs() {
		peers[id] = addrOf(id)
	}
	c.mu.Lock()
	c.members[id] = m
	c.ids = append(c.ids, id)
	sort.Slice(c.ids, func(i, j int) bool { return c.ids[i] < c.ids[j] })
	c.mu.Unlock()
	srv := c.newServer(m, peers)
	if err := srv.Start(); err != nil {
		return nil, err
	}
	c.setServer(m, srv)
	lead := c.Member(c.WaitLeader(10 * time.Second)).Server()
	if err := lead.AddMember(ctx, id, m.Addr, raft.Passive); err != nil {
		return nil, err
	}
	return m, nil
}

// WaitConverged waits until every running member has applied the same index
// and their state digests (server.StateDigest) agree, and returns the digest.
// It fails the test at the deadline, naming each member's index and digest.
func (c *Cluster) WaitConverged(timeout time.Duration) string {
	c.t.Helper()
	var last string
	var digest string
	deadline := time.Now().Add(timeout)
	for {
		var idx uint64
		same := true
		last = ""
		digest = ""
		for _, id := range c.IDs() {
			srv := c.Member(id).Server()
			if srv == nil {
				continue
			}
			i, d, err := srv.StateDigest()
			if err != nil {
				c.t.Fatalf("copycattest: digest of member %d: %v", id, err)
			}
			last += fmt.Sprintf(" %d@%d=%s", id, i, d)
			if digest == "" {
				idx, digest = i, d
			} else if i != idx || d != digest {
				same = false
			}
		}
		if same && digest != "" {
			return digest
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("copycattest: members did not converge within %v:%s", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
