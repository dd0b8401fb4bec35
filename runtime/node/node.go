package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Storage is the durable log a node writes to: the core's read view plus the
// writes the driver makes after each Ready. runtime/log implements it. The
// node's writer goroutine calls Save while the loop may read, so it must be
// safe for concurrent use.
type Storage interface {
	raft.Storage
	// Save appends entries (replacing a conflicting suffix) and records the
	// hard state, durably, before returning. A hard state whose term and vote
	// are unchanged (only the commit index moved) need not be synced: the
	// node may save it on its loop goroutine, so it should be cheap.
	Save(hs raft.HardState, ents []raft.Entry) error
	// Install replaces the whole log with a snapshot received from the
	// leader: its image and the live entries at or below its index, which
	// next delivers in index order.
	Install(snap raft.Snapshot, next func() (raft.Entry, bool, error)) error
}

// Transport sends messages to peers. runtime/transport implements it; the
// node calls Step with what the transport receives.
type Transport interface {
	Send(msgs []raft.Message)
	SetPeer(id uint64, addr string)
	RemovePeer(id uint64)
}

// Config configures a node.
type Config struct {
	// Raft configures the core. Raft.Storage is set from Storage.
	Raft raft.Config
	// TickInterval is the wall-clock length of one core tick (default 10 ms).
	TickInterval time.Duration
	Storage      Storage
	Transport    Transport
	// Apply receives committed entries in log order, on the node goroutine,
	// and returns one result per entry (or nil): a proposal made through this
	// node gets its entry's result back. It must not block for long: the node
	// does not tick meanwhile.
	Apply func(ents []raft.Entry) []any
	// ApplySnapshot, if set, is called once a snapshot from the leader (a
	// compaction point this member's log ends below) is in the log: it must
	// replace the application's state with the state at s.Meta.Index, from
	// the image s.Data and the live entries, before returning.
	ApplySnapshot func(s raft.Snapshot, live []raft.Entry) error
	// SnapshotEntries, if set, calls fn in index order for the live entries
	// at or below a snapshot's index, which a follower receives with the
	// image. Without it only the image is sent.
	SnapshotEntries func(s raft.Snapshot, fn func(raft.Entry) error) error
	// CheckSnapshot, if set, checks a snapshot received in full before the
	// core and the log see it (the image decodes, every live entry it names
	// came): a bad one is dropped, and the member stays as it was.
	CheckSnapshot func(s raft.Snapshot, live []raft.Entry) error
	// Peers seeds the transport with members' addresses before the log says
	// who is in the cluster: a member joining with an empty log must be able
	// to answer the leader before it has received any configuration.
	Peers map[uint64]string
	// MaxBatch bounds the proposals taken into one Ready (default 1024).
	MaxBatch int
	// MaxApplyBytes bounds the committed entries applied per loop
	// iteration (default 64 KiB; it caps Raft.MaxApplySize): a member
	// applying a long backlog — after a restart, or catching up — keeps
	// ticking and answering its peers between batches instead of missing
	// heartbeats and setting off elections.
	MaxApplyBytes uint64
	// CommitDelay bounds how long a follower may wait to learn that what it
	// holds was committed (default 1 ms; negative: at once, etcd's way). A
	// leader does not send an append of its own for each commit: the next
	// append carries the commit index, and only if none went out within
	// CommitDelay does the node send one (raft.Config.LazyCommit). Under a
	// light load that halves the messages per command; a follower applies,
	// and serves Sequential reads, up to CommitDelay later.
	CommitDelay time.Duration
	Logger      *slog.Logger
}

// Errors returned by node operations.
var (
	// ErrStopped is returned once the node has stopped.
	ErrStopped = errors.New("node: stopped")
	// ErrDropped is returned when a proposal was accepted but then lost to a
	// leader change before it committed; it may be retried.
	ErrDropped = errors.New("node: proposal lost to a leader change")
	// ErrLeadershipLost is returned to ProposeFunc callers when this member
	// stopped leading before their entry committed: the entry may still
	// commit under the next leader, or not.
	ErrLeadershipLost = errors.New("node: leadership lost; outcome unknown")
)

// Node is a running member.
type Node struct {
	cfg  Config
	r    *raft.Raft
	log  *slog.Logger
	recv chan []raft.Message
	reqs chan request
	stop chan struct{}
	done chan struct{}
	err  error // why the loop ended; set before done closes

	statusMu sync.RWMutex
	status   raft.Status

	// owned by the loop goroutine
	waiters   map[uint64]waiter // by index
	reads     map[uint64]chan<- readResult
	readSeq   uint64
	readQueue []pendingRead // confirmed reads waiting to be applied
	applied   uint64
	peers     map[uint64]string
	lastTick  time.Time
	snaps     snapshots
	view      *logView // the core's reads of the durable log
	w         *writer
	inflight  int    // writes handed to w and not yet reported to the core
	pushed    uint64 // writes handed to w
	reported  uint64 // writes reported to the core
	// peersDue: members that left stay in the transport until the writes
	// pushed up to peersDueAt are reported (syncPeers).
	peersDue   bool
	peersDueAt uint64

	lastHard raft.HardState // the hard state last handed to the storage
}

type waiter struct {
	term uint64
	ch   chan<- proposeResult
	// fn, if set, receives the outcome instead of ch, on the node goroutine.
	fn func(Result, error)
	// failOnStepDown resolves the waiter with ErrLeadershipLost as soon as
	// this member stops leading, for callers whose retries are safe.
	failOnStepDown bool
}

func (w waiter) resolve(r proposeResult) {
	if w.fn != nil {
		w.fn(Result{Index: r.index, Value: r.value}, r.err)
		return
	}
	w.ch <- r
}

type proposeResult struct {
	index uint64
	value any
	err   error
}

// Result is what a committed proposal produced.
type Result struct {
	// Index is the proposal's log index.
	Index uint64
	// Value is what Config.Apply returned for the entry.
	Value any
}

type readResult struct {
	index uint64
	err   error
}

type pendingRead struct {
	index uint64
	ch    chan<- readResult
}

// request is an operation run on the loop goroutine.
type request func(n *Node)

// Start creates the core from cfg.Storage and starts the node's goroutine.
func Start(cfg Config) (*Node, error) {
	if cfg.Storage == nil || cfg.Transport == nil || cfg.Apply == nil {
		return nil, errors.New("node: Storage, Transport and Apply must be set")
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 10 * time.Millisecond
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.MaxApplyBytes == 0 {
		cfg.MaxApplyBytes = 64 << 10
	}
	if cfg.Raft.MaxApplySize == 0 || cfg.Raft.MaxApplySize > cfg.MaxApplyBytes {
		cfg.Raft.MaxApplySize = cfg.MaxApplyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CommitDelay == 0 {
		cfg.CommitDelay = time.Millisecond
	}
	cfg.Raft.LazyCommit = cfg.CommitDelay > 0
	view, err := newLogView(cfg.Storage)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
	}
	cfg.Raft.Storage = view
	// Writes go to the writer goroutine (writer.go).
	cfg.Raft.AsyncStorageWrites = true
	if cfg.Raft.Now == nil {
		cfg.Raft.Now = func() int64 { return time.Now().UnixNano() }
	}
	r, err := raft.New(cfg.Raft)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
	}
	n := &Node{
		cfg:     cfg,
		r:       r,
		log:     cfg.Logger.With("member", cfg.Raft.ID),
		recv:    make(chan []raft.Message, 256),
		reqs:    make(chan request, 1024),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		waiters: map[uint64]waiter{},
		reads:   map[uint64]chan<- readResult{},
		peers:   map[uint64]string{},
		snaps:   snapshots{out: map[uint64]*outStream{}},
		view:    view,
		w:       newWriter(cfg.Storage, cfg.Transport),
	}
	st := r.Status()
	n.lastHard = st.HardState
	n.applied = st.Applied
	for id, addr := range cfg.Peers {
		if id != cfg.Raft.ID {
			n.peers[id] = addr
			cfg.Transport.SetPeer(id, addr)
		}
	}
	n.syncPeers(st.Config)
	n.status = st
	go n.w.run()
	go n.run()
	return n, nil
}

// Step hands messages received from peers to the node. It drops them if the
// node is overloaded or stopped: Raft tolerates message loss.
func (n *Node) Step(msgs []raft.Message) {
	select {
	case n.recv <- msgs:
	case <-n.done:
	default:
	}
}

// Stop ends the node's goroutine and waits for it. It does not close the
// storage or the transport, which the caller owns.
func (n *Node) Stop() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
}

// Done is closed when the node has stopped, by Stop or by a fatal error.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns why the node stopped, once Done is closed (nil after Stop).
func (n *Node) Err() error {
	<-n.done
	return n.err
}

// Status returns the core's state as of the last loop iteration.
func (n *Node) Status() raft.Status {
	n.statusMu.RLock()
	defer n.statusMu.RUnlock()
	return n.status
}

// do runs f on the loop goroutine.
func (n *Node) do(ctx context.Context, f request) error {
	select {
	case n.reqs <- f:
		return nil
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Propose appends data to the log through this member, which must lead, and
// returns once it is committed and applied, with what applying it produced.
func (n *Node) Propose(ctx context.Context, data []byte) (Result, error) {
	ch := make(chan proposeResult, 1)
	err := n.do(ctx, func(n *Node) {
		idx, err := n.r.Propose(raft.Entry{Data: data, Timestamp: time.Now().UnixNano()})
		if err != nil {
			ch <- proposeResult{err: err}
			return
		}
		n.waiters[idx] = waiter{term: n.r.Term(), ch: ch}
	})
	if err != nil {
		return Result{}, err
	}
	return n.wait(ctx, ch)
}

func (n *Node) wait(ctx context.Context, ch <-chan proposeResult) (Result, error) {
	select {
	case res := <-ch:
		return Result{Index: res.index, Value: res.value}, res.err
	case <-n.done:
		return Result{}, ErrStopped
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// ChangeMembership proposes a configuration change and returns once it is
// committed and applied.
func (n *Node) ChangeMembership(ctx context.Context, cc raft.ConfChange) (uint64, error) {
	ch := make(chan proposeResult, 1)
	err := n.do(ctx, func(n *Node) {
		idx, err := n.r.ProposeConfChange(cc)
		if err != nil {
			ch <- proposeResult{err: err}
			return
		}
		n.waiters[idx] = waiter{term: n.r.Term(), ch: ch}
	})
	if err != nil {
		return 0, err
	}
	res, err := n.wait(ctx, ch)
	return res.Index, err
}

// TransferLeadership asks the leader to hand over to the given member and
// waits until some other member leads or ctx ends.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	errc := make(chan error, 1)
	if err := n.do(ctx, func(n *Node) { errc <- n.r.TransferLeadership(to) }); err != nil {
		return err
	}
	select {
	case err := <-errc:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for {
		if s := n.Status(); s.SoftState.Lead != 0 && s.SoftState.Lead != s.ID {
			return nil
		}
		select {
		case <-t.C:
		case <-n.done:
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadIndex confirms a linearizable read point (§6.4): it returns an index
// that this member has applied and that reflects every write committed
// before the call. With lease set, the leader answers from its lease when it
// holds one.
func (n *Node) ReadIndex(ctx context.Context, lease bool) (uint64, error) {
	ch := make(chan readResult, 1)
	err := n.do(ctx, func(n *Node) {
		n.readSeq++
		var err error
		if lease {
			err = n.r.LeaseRead(n.readSeq)
		} else {
			err = n.r.ReadIndex(n.readSeq)
		}
		if err != nil {
			ch <- readResult{err: err}
			return
		}
		n.reads[n.readSeq] = ch
	})
	if err != nil {
		return 0, err
	}
	select {
	case res := <-ch:
		return res.index, res.err
	case <-n.done:
		return 0, ErrStopped
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// FullStatus returns the core's state with each member's replication
// progress (on the leader), taken on the node's goroutine.
func (n *Node) FullStatus(ctx context.Context) (raft.Status, error) {
	ch := make(chan raft.Status, 1)
	if err := n.do(ctx, func(n *Node) { ch <- n.r.Status() }); err != nil {
		return raft.Status{}, err
	}
	select {
	case s := <-ch:
		return s, nil
	case <-n.done:
		return raft.Status{}, ErrStopped
	case <-ctx.Done():
		return raft.Status{}, ctx.Err()
	}
}

// ProposeFunc queues a proposal and returns; done is called on the node's
// goroutine with its outcome (it must not block): once the entry is applied,
// when it is lost, as soon as this member stops leading (ErrLeadershipLost:
// the entry may still commit), or when the node stops. Proposals queued one
// after another by one goroutine are appended in that order. It is for
// callers whose retries are safe, like a server's session commands.
func (n *Node) ProposeFunc(ctx context.Context, data []byte, done func(Result, error)) error {
	return n.do(ctx, func(n *Node) {
		idx, err := n.r.Propose(raft.Entry{Data: data, Timestamp: time.Now().UnixNano()})
		if err != nil {
			done(Result{}, err)
			return
		}
		n.waiters[idx] = waiter{term: n.r.Term(), fn: done, failOnStepDown: true}
	})
}

// Outcome is the eventual result of an asynchronous proposal.
type Outcome struct {
	Result Result
	Err    error
}

// ProposeAsync queues a proposal and returns at once with a channel that
// receives its outcome. Proposals queued one after another by one goroutine
// are appended to the log in that order, which is what lets a server keep a
// client's pipelined commands in sequence without waiting for each.
func (n *Node) ProposeAsync(ctx context.Context, data []byte) (<-chan Outcome, error) {
	out := make(chan Outcome, 1)
	err := n.ProposeFunc(ctx, data, func(r Result, err error) { out <- Outcome{Result: r, Err: err} })
	if err != nil {
		return nil, err
	}
	return out, nil
}
