package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/copycat-go/copycat/runtime"
	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/node"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/statemachine"
	"github.com/copycat-go/copycat/runtime/transport"
)

// ErrNotLeader is returned by operations that only the leader performs.
var ErrNotLeader = errors.New("server: not the leader")

// Server is one member.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store rlog.Store
	owns  bool // the server opened the store and closes it
	tr    transport.Transport
	ln    net.Listener // client listener when the peer transport is not TCP

	mu         sync.Mutex // guards everything below, and sm
	sm         *statemachine.StateMachine
	cmdWaiters map[cmdKey][]*cmdWaiter
	appliedCh  chan struct{} // closed and replaced after every applied batch
	conns      map[uint64]map[*clientConn]struct{}
	allConns   map[*clientConn]struct{}
	lastSeen   map[uint64]time.Time // leader's receipt time of each session's last keep-alive
	expiring   map[uint64]bool
	wasLeader  bool
	comp       compactionState

	compactWake chan struct{}

	node      atomic.Pointer[node.Node]
	keepAlive chan *kaRequest
	stop      chan struct{}
	wg        sync.WaitGroup
	stopOnce  sync.Once
}

type cmdKey struct{ session, seq uint64 }

// cmdWaiter is a client request waiting for its command to be applied here.
type cmdWaiter struct {
	cc  *clientConn
	req *protocol.Message
}

// New creates a member hosting the given resource types. It opens the log
// and the transport; Bootstrap or Start begins taking part in the cluster.
func New(cfg Config, types ...*runtime.ResourceType) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sm, err := statemachine.New(types...)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger.With("member", cfg.ID),
		sm:          sm,
		cmdWaiters:  map[cmdKey][]*cmdWaiter{},
		appliedCh:   make(chan struct{}),
		conns:       map[uint64]map[*clientConn]struct{}{},
		allConns:    map[*clientConn]struct{}{},
		lastSeen:    map[uint64]time.Time{},
		expiring:    map[uint64]bool{},
		keepAlive:   make(chan *kaRequest, 1024),
		compactWake: make(chan struct{}, 1),
		stop:        make(chan struct{}),
	}
	if cfg.Storage != nil {
		s.store = cfg.Storage
	} else {
		st, err := rlog.Open(rlog.Options{Dir: cfg.DataDir, NoSync: cfg.NoSync, SegmentSize: cfg.SegmentSize, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.store, s.owns = st, true
	}
	handler := func(msgs []raft.Message) {
		if n := s.currentNode(); n != nil {
			n.Step(msgs)
		}
	}
	if cfg.Transport != nil {
		s.tr = cfg.Transport(handler)
		s.ln = cfg.Listener
	} else {
		tcp, err := transport.NewTCP(transport.TCPConfig{
			ClusterID: cfg.ClusterID, MemberID: cfg.ID, Listener: cfg.Listener, ListenAddr: cfg.Addr,
			Handler: handler, TLS: cfg.TLS, Logger: cfg.Logger, SourceIP: cfg.SourceIP,
			AcceptConn: func(h transport.Hello, c *transport.Conn) {
				if h.Kind == transport.KindClient {
					s.serveClient(c)
				}
			},
		})
		if err != nil {
			s.closeStore()
			return nil, fmt.Errorf("server: %w", err)
		}
		s.tr = tcp
		if s.cfg.Addr == "" {
			s.cfg.Addr = tcp.Addr().String()
		}
	}
	return s, nil
}

func (s *Server) currentNode() *node.Node { return s.node.Load() }

// Addr returns the address the member serves on.
func (s *Server) Addr() string { return s.cfg.Addr }

// ID returns the member's ID.
func (s *Server) ID() uint64 { return s.cfg.ID }

// Bootstrap starts a new cluster whose founding members are given (this
// member among them): on an empty log it writes the founding configuration,
// which every founding member must write identically; on a log that has
// state it just starts.
func (s *Server) Bootstrap(members []raft.Member) error {
	last, err := s.store.LastIndex()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	hs, _, err := s.store.InitialState()
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if last == 0 && hs.IsEmpty() {
		found := false
		for _, m := range members {
			found = found || m.ID == s.cfg.ID
		}
		if !found {
			return fmt.Errorf("server: member %d is not among the founding members", s.cfg.ID)
		}
		if err := s.store.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(members)}); err != nil {
			return fmt.Errorf("server: write founding configuration: %w", err)
		}
	}
	return s.Start()
}

// Start starts the member from its log: a restart, or a new member whose
// leader will add it.
func (s *Server) Start() error {
	if err := s.restoreImage(); err != nil {
		return err
	}
	cfg := raft.DefaultConfig(s.cfg.ID, nil)
	cfg.ElectionTick = s.cfg.ElectionTicks
	cfg.HeartbeatTick = s.cfg.HeartbeatTicks
	n, err := node.Start(node.Config{
		Raft: cfg, TickInterval: s.cfg.TickInterval, Storage: s.store, Transport: s.tr,
		Apply: s.apply, Peers: s.cfg.Peers, Logger: s.cfg.Logger, CommitDelay: s.cfg.CommitDelay,
		ApplySnapshot: s.applySnapshot, SnapshotEntries: s.liveEntries, CheckSnapshot: s.checkSnapshot,
	})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.node.Store(n)
	s.wg.Add(3)
	go s.keepAliveLoop()
	go s.expiryLoop()
	go s.compactLoop()
	if s.ln != nil {
		s.wg.Add(1)
		go s.acceptLoop()
	}
	s.log.Info("member started", "addr", s.cfg.Addr)
	return nil
}

// Status returns the member's Raft status.
func (s *Server) Status() raft.Status {
	if n := s.currentNode(); n != nil {
		return n.Status()
	}
	return raft.Status{ID: s.cfg.ID}
}

// IsLeader reports whether this member leads.
func (s *Server) IsLeader() bool {
	st := s.Status()
	return st.SoftState.State == raft.StateLeader
}

// leaderAddr returns the address of the member this one believes leads.
func (s *Server) leaderAddr() string {
	st := s.Status()
	if m, ok := st.Config.Member(st.SoftState.Lead); ok {
		return m.Addr
	}
	return ""
}

// memberAddrs returns the addresses of the current members.
func (s *Server) memberAddrs() []string {
	st := s.Status()
	var out []string
	for _, m := range st.Config.Members {
		if m.Type != raft.Reserve {
			out = append(out, m.Addr)
		}
	}
	return out
}

// Shutdown stops the member. A leader first hands leadership to another
// voter (bounded by ctx), so that clients see no election timeout.
func (s *Server) Shutdown(ctx context.Context) error {
	if n := s.currentNode(); n != nil && s.IsLeader() {
		st := n.Status()
		for _, id := range st.Config.Voters() {
			if id == s.cfg.ID {
				continue
			}
			tctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.ElectionTicks)*s.cfg.TickInterval)
			err := n.TransferLeadership(tctx, id)
			cancel()
			if err == nil {
				break
			}
			s.log.Warn("leadership transfer before shutdown failed", "to", id, "err", err)
		}
	}
	return s.Stop()
}

// Stop stops the member at once, without handing leadership over.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		close(s.stop)
		if n := s.currentNode(); n != nil {
			n.Stop()
		}
		if s.ln != nil {
			s.ln.Close()
		}
		err = s.tr.Close()
		s.mu.Lock()
		for c := range s.allConns {
			c.close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.closeStore()
		s.log.Info("member stopped")
	})
	return err
}

func (s *Server) closeStore() {
	if s.owns {
		if err := s.store.Close(); err != nil {
			s.log.Warn("closing the log", "err", err)
		}
	}
}

// Membership, exposed in Go. Each call is a compare-and-set against the
// configuration the leader holds when it runs.

// AddMember adds a member as PASSIVE (or RESERVE); promote it once it has
// caught up.
func (s *Server) AddMember(ctx context.Context, id uint64, addr string, t raft.MemberType) error {
	return s.change(ctx, raft.ConfChange{Type: raft.AddMember, ID: id, Addr: addr, MemberType: t})
}

// RemoveMember removes a member (the leader too: it steps down once removed).
func (s *Server) RemoveMember(ctx context.Context, id uint64) error {
	return s.change(ctx, raft.ConfChange{Type: raft.RemoveMember, ID: id})
}

// PromoteMember moves RESERVE to PASSIVE, or a caught-up PASSIVE to ACTIVE.
// It retries while the member is still catching up, until ctx ends.
func (s *Server) PromoteMember(ctx context.Context, id uint64) error {
	for {
		err := s.change(ctx, raft.ConfChange{Type: raft.PromoteMember, ID: id})
		if !errors.Is(err, raft.ErrNotCaughtUp) {
			return err
		}
		select {
		case <-time.After(s.cfg.TickInterval):
		case <-ctx.Done():
			return fmt.Errorf("server: promote %d: %w", id, err)
		}
	}
}

// DemoteMember moves ACTIVE to PASSIVE, or PASSIVE to RESERVE.
func (s *Server) DemoteMember(ctx context.Context, id uint64) error {
	return s.change(ctx, raft.ConfChange{Type: raft.DemoteMember, ID: id})
}

// TransferLeadership hands leadership to the given voter.
func (s *Server) TransferLeadership(ctx context.Context, to uint64) error {
	n := s.currentNode()
	if n == nil {
		return ErrNotLeader
	}
	return n.TransferLeadership(ctx, to)
}

func (s *Server) change(ctx context.Context, cc raft.ConfChange) error {
	n := s.currentNode()
	if n == nil || !s.IsLeader() {
		return ErrNotLeader
	}
	for {
		cc.ConfigIndex = n.Status().Config.Index
		_, err := n.ChangeMembership(ctx, cc)
		if !errors.Is(err, raft.ErrConfigChangePending) && !errors.Is(err, raft.ErrConfigIndexMismatch) {
			return err
		}
		select {
		case <-time.After(s.cfg.TickInterval):
		case <-ctx.Done():
			return fmt.Errorf("server: %s %d: %w", cc.Type, cc.ID, err)
		}
	}
}

// HasSession reports whether this member's state machine holds the session
// open.
func (s *Server) HasSession(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sm.Session(id)
	return ok && sess.State == runtime.SessionOpen
}

// Sessions returns the number of open sessions this member holds.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sm.SessionIDs())
}

// Resources returns the number of resource instances this member holds.
func (s *Server) Resources() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sm.Resources()
}

// SessionStats reports what this member holds for sessions: how many are
// open, and how many cached responses and unacknowledged event batches they
// hold in all. A steady workload must keep the last two bounded.
func (s *Server) SessionStats() (sessions, responses, eventBatches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.sm.SessionIDs() {
		sess, _ := s.sm.Session(id)
		r, e := sess.Sizes()
		sessions++
		responses += r
		eventBatches += e
	}
	return sessions, responses, eventBatches
}

// FullStatus returns the member's Raft status including, on the leader,
// every member's replication progress.
func (s *Server) FullStatus(ctx context.Context) (raft.Status, error) {
	n := s.currentNode()
	if n == nil {
		return raft.Status{ID: s.cfg.ID}, nil
	}
	return n.FullStatus(ctx)
}
