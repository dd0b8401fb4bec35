package node

import (
	"fmt"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

func (n *Node) run() {
	defer close(n.done)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	n.lastTick = time.Now()
	for {
		select {
		case <-ticker.C:
			n.catchUpTicks()
		case msgs := <-n.recv:
			n.catchUpTicks()
			n.step(msgs)
		case req := <-n.reqs:
			n.catchUpTicks()
			req(n)
			// Take whatever else is queued into the same Ready: batching.
			for i := 1; i < n.cfg.MaxBatch; i++ {
				select {
				case req := <-n.reqs:
					req(n)
					continue
				default:
				}
				break
			}
		case <-n.stop:
			n.failAll(ErrStopped)
			return
		}
		if err := n.handleReady(); err != nil {
			n.log.Error("node stopping", "err", err)
			n.err = err
			n.failAll(err)
			return
		}
	}
}

// catchUpTicks gives the core every tick that wall-clock time says has
// passed. A time.Ticker drops ticks while the loop is blocked (a slow fsync,
// a long apply, a paused process); the core's leases and timeouts are
// counted in ticks, so a leader that missed ticks would trust a lease that
// has run out (its followers' ticks kept coming) — so ticks are counted from
// the clock, not from the ticker. At most a few election timeouts' worth are
// delivered at once: enough to expire every lease and timer.
func (n *Node) catchUpTicks() {
	elapsed := time.Since(n.lastTick)
	k := int(elapsed / n.cfg.TickInterval)
	if k <= 0 {
		return
	}
	if limit := 3 * n.cfg.Raft.ElectionTick; k > limit {
		for range limit {
			n.r.Tick()
		}
		n.lastTick = time.Now()
		return
	}
	for range k {
		n.r.Tick()
	}
	n.lastTick = n.lastTick.Add(time.Duration(k) * n.cfg.TickInterval)
}

func (n *Node) step(msgs []raft.Message) {
	for _, m := range msgs {
		if n.stepDriver(m) {
			continue
		}
		if err := n.r.Step(m); err != nil {
			n.log.Warn("dropping message", "msg", m.Type, "from", m.From, "err", err)
		}
	}
	// Drain what else arrived, so that one save covers it all.
	for {
		select {
		case more := <-n.recv:
			for _, m := range more {
				if n.stepDriver(m) {
					continue
				}
				if err := n.r.Step(m); err != nil {
					n.log.Warn("dropping message", "msg", m.Type, "from", m.From, "err", err)
				}
			}
		default:
			return
		}
	}
}

// handleReady does one Ready's work in the order the core requires.
func (n *Node) handleReady() error {
	if !n.r.HasReady() {
		return nil
	}
	rd := n.r.Ready()
	// A leader's appends go out now, in parallel with its own write.
	n.send(rd.Messages)
	if rd.Snapshot != nil {
		if err := n.installSnapshot(*rd.Snapshot); err != nil {
			return err
		}
		n.applied = rd.Snapshot.Meta.Index
	}
	if len(rd.Entries) > 0 || !rd.HardState.IsEmpty() {
		if err := n.cfg.Storage.Save(rd.HardState, rd.Entries); err != nil {
			// Continuing without durable state would break every promise
			// made to peers: stop instead.
			return fmt.Errorf("node: save: %w", err)
		}
	}
	n.send(rd.MessagesAfterSave)
	if len(rd.CommittedEntries) > 0 {
		results := n.cfg.Apply(rd.CommittedEntries)
		last := rd.CommittedEntries[len(rd.CommittedEntries)-1].Index
		n.applied = last
		n.resolveWaiters(rd.CommittedEntries, results)
	}
	for _, rs := range rd.ReadStates {
		if ch, ok := n.reads[rs.Context]; ok {
			delete(n.reads, rs.Context)
			n.readQueue = append(n.readQueue, pendingRead{index: rs.Index, ch: ch})
		}
	}
	n.releaseReads()
	n.r.Advance(rd)
	st := n.r.BasicStatus()
	if rd.SoftState != nil {
		n.log.Info("role changed", "state", st.SoftState.State.String(), "lead", st.SoftState.Lead, "term", st.HardState.Term)
		if st.SoftState.State != raft.StateLeader {
			n.stopStreams()
			for idx, w := range n.waiters {
				if w.failOnStepDown {
					delete(n.waiters, idx)
					w.resolve(proposeResult{err: ErrLeadershipLost})
				}
			}
			// Reads pending at a leader that lost its role will not be
			// confirmed by it; let callers retry elsewhere.
			for seq, ch := range n.reads {
				ch <- readResult{err: raft.ErrNotLeader}
				delete(n.reads, seq)
			}
		}
	}
	if st.Config.Index != n.status.Config.Index {
		n.syncPeers(st.Config)
	}
	n.statusMu.Lock()
	n.status = st
	n.statusMu.Unlock()
	return nil
}

// resolveWaiters answers proposals whose index was applied: with success if
// the applied entry is theirs (same term), with ErrDropped if another
// leader's entry took the slot.
func (n *Node) resolveWaiters(ents []raft.Entry, results []any) {
	if len(n.waiters) == 0 {
		return
	}
	for i, e := range ents {
		w, ok := n.waiters[e.Index]
		if !ok {
			continue
		}
		delete(n.waiters, e.Index)
		if e.Term == w.term {
			var v any
			if i < len(results) {
				v = results[i]
			}
			w.resolve(proposeResult{index: e.Index, value: v})
		} else {
			w.resolve(proposeResult{err: ErrDropped})
		}
	}
}

func (n *Node) releaseReads() {
	i := 0
	for ; i < len(n.readQueue) && n.readQueue[i].index <= n.applied; i++ {
		n.readQueue[i].ch <- readResult{index: n.readQueue[i].index}
	}
	n.readQueue = n.readQueue[i:]
}

func (n *Node) failAll(err error) {
	for idx, w := range n.waiters {
		w.resolve(proposeResult{err: err})
		delete(n.waiters, idx)
	}
	for seq, ch := range n.reads {
		ch <- readResult{err: err}
		delete(n.reads, seq)
	}
	for _, p := range n.readQueue {
		p.ch <- readResult{err: err}
	}
	n.readQueue = nil
}

// syncPeers points the transport at the members of the configuration.
func (n *Node) syncPeers(c raft.Configuration) {
	if len(c.Members) == 0 {
		return // no configuration yet: keep the seed peers
	}
	seen := map[uint64]bool{}
	for _, m := range c.Members {
		if m.ID == n.cfg.Raft.ID {
			continue
		}
		seen[m.ID] = true
		if n.peers[m.ID] != m.Addr {
			n.peers[m.ID] = m.Addr
			n.cfg.Transport.SetPeer(m.ID, m.Addr)
		}
	}
	for id := range n.peers {
		if !seen[id] {
			delete(n.peers, id)
			n.cfg.Transport.RemovePeer(id)
		}
	}
}
