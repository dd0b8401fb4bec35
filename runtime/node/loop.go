package node

import (
	"fmt"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

func (n *Node) run() {
	defer close(n.done)
	defer n.w.halt() // before done closes: the caller may close the storage then
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	n.lastTick = time.Now()
	// pending is ready to receive from while the core has work left that
	// one iteration did not take (entries to apply beyond MaxApplyBytes):
	// the loop goes on with it, taking ticks and messages in between.
	var pending <-chan time.Time
	// commitDue fires CommitDelay after a commit that followers were not
	// told of (raft.Config.LazyCommit); nil while none is pending.
	commitTimer := time.NewTimer(time.Hour)
	commitTimer.Stop()
	defer commitTimer.Stop()
	var commitDue <-chan time.Time
	for {
		n.view.newIteration()
		select {
		case <-pending:
		case <-commitDue:
			commitDue = nil
			n.r.BroadcastCommit()
		case <-ticker.C:
			n.catchUpTicks()
			n.refreshFirst()
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
		case <-n.w.done:
			if err := n.writesDone(); err != nil {
				n.fatal(err)
				return
			}
		case <-n.stop:
			n.failAll(ErrStopped)
			return
		}
		if err := n.handleReady(); err != nil {
			n.fatal(err)
			return
		}
		pending = nil
		if n.r.HasReady() {
			pending = closedTime
		}
		if commitDue == nil && n.cfg.Raft.LazyCommit && n.r.CommitPending() {
			commitTimer.Reset(n.cfg.CommitDelay)
			commitDue = commitTimer.C
		}
	}
}

// closedTime is always ready to receive from.
var closedTime = func() <-chan time.Time {
	ch := make(chan time.Time)
	close(ch)
	return ch
}()

// fatal ends the loop on an error that makes going on unsafe (the disk
// failed): continuing without durable state would break every promise made
// to peers.
func (n *Node) fatal(err error) {
	n.log.Error("node stopping", "err", err)
	n.err = err
	n.failAll(err)
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

// handleReady does one Ready's work in the order the core requires, with
// the writes handed to the writer (see writer.go).
func (n *Node) handleReady() error {
	if !n.r.HasReady() {
		return nil
	}
	rd := n.r.Ready()
	// A leader's appends go out now, in parallel with its own write.
	n.send(rd.Messages)
	if rd.Snapshot != nil {
		if err := n.installReady(rd); err != nil {
			return err
		}
	} else if err := n.persist(rd); err != nil {
		return err
	}
	if len(rd.CommittedEntries) > 0 {
		// The core hands out only entries durable here: no need to wait
		// for the write in flight.
		results := n.cfg.Apply(rd.CommittedEntries)
		last := rd.CommittedEntries[len(rd.CommittedEntries)-1].Index
		n.applied = last
		n.resolveWaiters(rd.CommittedEntries, results)
	}
	n.r.AdvanceApply(rd)
	for _, rs := range rd.ReadStates {
		if ch, ok := n.reads[rs.Context]; ok {
			delete(n.reads, rs.Context)
			n.readQueue = append(n.readQueue, pendingRead{index: rs.Index, ch: ch})
		}
	}
	n.releaseReads()
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

// persist hands a Ready's hard state, entries and MessagesAfterSave to the
// writer. When nothing is in flight and the Ready needs no fsync — no
// entries, and a hard state whose term and vote are already on their way to
// disk (only the commit index moved, which Storage.Save may keep in memory) —
// it is done right here, saving the writer two wake-ups per commit.
func (n *Node) persist(rd raft.Ready) error {
	needed := len(rd.Entries) > 0 || !rd.HardState.IsEmpty() || len(rd.MessagesAfterSave) > 0
	if !needed {
		return nil
	}
	hs := rd.HardState
	commitOnly := hs.IsEmpty() || (hs.Term == n.lastHard.Term && hs.Vote == n.lastHard.Vote)
	if !hs.IsEmpty() {
		n.lastHard = hs
	}
	if n.inflight == 0 && len(rd.Entries) == 0 && commitOnly {
		if !hs.IsEmpty() {
			if err := n.cfg.Storage.Save(hs, nil); err != nil {
				return fmt.Errorf("node: save: %w", err)
			}
		}
		n.send(rd.MessagesAfterSave)
		n.r.AdvanceWrite(rd)
		return nil
	}
	wr := write{rd: raft.Ready{HardState: hs, Entries: rd.Entries, MessagesAfterSave: rd.MessagesAfterSave}}
	for i, m := range rd.MessagesAfterSave {
		if m.Type != raft.MsgSnap {
			continue
		}
		// Streams are the loop's to start: split them off.
		plain := append([]raft.Message(nil), rd.MessagesAfterSave[:i]...)
		for _, m := range rd.MessagesAfterSave[i:] {
			if m.Type == raft.MsgSnap {
				wr.snaps = append(wr.snaps, m)
			} else {
				plain = append(plain, m)
			}
		}
		wr.rd.MessagesAfterSave = plain
		break
	}
	n.inflight++
	n.pushed++
	n.w.push(wr)
	return nil
}

// writesDone takes the writes the writer finished, in order, and tells the
// core they are durable.
func (n *Node) writesDone() error {
	done, first, err := n.w.take()
	// The view first, then the core: between two AdvanceWrite calls the
	// core must not read a view that lags what it was told.
	for _, wr := range done {
		n.view.written(wr.rd.Entries)
	}
	if len(done) > 0 {
		n.view.compacted(first)
	}
	for _, wr := range done {
		n.inflight--
		n.reported++
		n.r.AdvanceWrite(wr.rd)
		if len(wr.snaps) > 0 && n.r.BasicStatus().SoftState.State == raft.StateLeader {
			for _, m := range wr.snaps {
				if m.Term == n.r.Term() {
					n.startStream(m)
				}
			}
		}
	}
	if n.peersDue && n.reported >= n.peersDueAt {
		n.syncPeers(n.r.BasicStatus().Config)
	}
	return err
}

// drainWrites waits until every write handed to the writer is durable and
// reported to the core.
func (n *Node) drainWrites() error {
	for n.inflight > 0 {
		<-n.w.done
		if err := n.writesDone(); err != nil {
			return err
		}
	}
	return nil
}

// installReady handles a Ready that carries a snapshot, synchronously: the
// writes before it finish first, then the log and the application's state
// are replaced, then the Ready's own entries and hard state are saved.
func (n *Node) installReady(rd raft.Ready) error {
	if err := n.drainWrites(); err != nil {
		return err
	}
	if err := n.installSnapshot(*rd.Snapshot); err != nil {
		return err
	}
	n.applied = rd.Snapshot.Meta.Index
	if err := n.view.reload(); err != nil {
		return err
	}
	if len(rd.Entries) > 0 || !rd.HardState.IsEmpty() {
		if err := n.cfg.Storage.Save(rd.HardState, rd.Entries); err != nil {
			return fmt.Errorf("node: save: %w", err)
		}
		if !rd.HardState.IsEmpty() {
			n.lastHard = rd.HardState
		}
	}
	n.view.written(rd.Entries)
	n.send(rd.MessagesAfterSave)
	n.r.AdvanceWrite(rd)
	return nil
}

// refreshFirst catches the view's first index up with a compaction while
// the writer is idle (while it works, each finished write does it).
func (n *Node) refreshFirst() {
	if n.inflight > 0 {
		return
	}
	if first, err := n.cfg.Storage.FirstIndex(); err == nil {
		n.view.compacted(first)
	}
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
// Members that left are dropped only once the writes handed to the writer
// before are done: their MessagesAfterSave may still be addressed to them
// (a follower acknowledges the very entry that removes the leader to that
// leader, which commits it only so).
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
	n.peersDue = false
	for id := range n.peers {
		if seen[id] {
			continue
		}
		if n.reported < n.pushed {
			n.peersDue, n.peersDueAt = true, n.pushed
			continue
		}
		delete(n.peers, id)
		n.cfg.Transport.RemovePeer(id)
	}
}
