package node

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// A follower whose next entry lies at or below the leader's compaction point
// C gets the state at C instead of entries: the image (raft.Snapshot.Data)
// and the live entries at or below C. Images can be large and the transport
// bounds a frame, so the leader streams them as numbered MsgSnapChunk
// messages with a window of unacknowledged chunks (flow control); the
// follower acknowledges the number of chunks it holds in order, keeps them
// across a broken stream (a new stream of the same snapshot resumes where
// it stopped), and, once it has them all, hands the core one MsgSnap. When
// the core accepts it (Ready.Snapshot), the node replaces the log with the
// staged entries (Storage.Install) and the application's state
// (Config.ApplySnapshot).
//
// Chunk fields: Index/LogTerm = the snapshot's index and term, Commit = the
// chunk's number, Context = 1 on the last chunk, Snapshot = the meta and a
// piece of the image, Entries = a piece of the live entries. Acknowledgement:
// Index/LogTerm as above, Commit = chunks held in order (the next wanted).

const (
	// chunkBytes is the payload aimed at per chunk: well under the
	// transport's frame limit.
	chunkBytes = 1 << 20
	// chunkWindow is how many chunks may be unacknowledged.
	chunkWindow = 4
	chunkLast   = 1
)

// SnapshotStats describes the snapshot streams a node has sent and received.
type SnapshotStats struct {
	// Active is the number of streams being sent now.
	Active int
	// Sent and Received count completed streams.
	Sent, Received int
	// LastSent describes the last completed outgoing stream.
	LastSent StreamStats
	// LastInstalled describes the last snapshot this member installed.
	LastInstalled StreamStats
}

// StreamStats describes one snapshot stream.
type StreamStats struct {
	To, From      uint64
	Index         uint64
	Chunks        int
	Entries       int
	Bytes         int
	Duration      time.Duration
	Retransmitted int
}

// outStream sends one snapshot to one follower.
type outStream struct {
	to    uint64
	meta  raft.SnapshotMeta
	acks  chan raft.Message
	stop  chan struct{}
	done  chan struct{}
	stats StreamStats
}

// inStream is what a follower has received of one snapshot.
type inStream struct {
	leader   uint64
	meta     raft.SnapshotMeta
	image    []byte
	entries  []raft.Entry
	next     uint64 // chunks held
	complete bool
	started  time.Time
	bytes    int
}

// snapshots is the node's snapshot streaming state. The maps are owned by
// the loop goroutine; stats are read by others.
type snapshots struct {
	out map[uint64]*outStream
	in  *inStream // being received
	// handed is the complete stream given to the core as a MsgSnap, which
	// Ready.Snapshot installs.
	handed *inStream

	mu    sync.Mutex
	stats SnapshotStats
}

// SnapshotStats returns counts and figures of snapshot streams.
func (n *Node) SnapshotStats() SnapshotStats {
	n.snaps.mu.Lock()
	defer n.snaps.mu.Unlock()
	return n.snaps.stats
}

// SnapshotInFlight reports whether this member is streaming a snapshot to a
// follower: the log must not be compacted past it meanwhile, or the follower
// would finish installing a point whose successors are gone and need
// another snapshot, for ever (consul#9609).
func (n *Node) SnapshotInFlight() bool {
	n.snaps.mu.Lock()
	defer n.snaps.mu.Unlock()
	return n.snaps.stats.Active > 0
}

// send hands messages to the transport, diverting MsgSnap to a stream.
func (n *Node) send(msgs []raft.Message) {
	plain := msgs
	for i, m := range msgs {
		if m.Type == raft.MsgSnap {
			plain = make([]raft.Message, 0, len(msgs))
			plain = append(plain, msgs[:i]...)
			for _, m := range msgs[i:] {
				if m.Type == raft.MsgSnap {
					n.startStream(m)
				} else {
					plain = append(plain, m)
				}
			}
			break
		}
	}
	if len(plain) > 0 {
		n.cfg.Transport.Send(plain)
	}
}

// startStream begins streaming the snapshot of a MsgSnap the core sent,
// unless that snapshot is already on its way to that follower.
func (n *Node) startStream(m raft.Message) {
	if m.Snapshot == nil {
		return
	}
	if s, ok := n.snaps.out[m.To]; ok {
		select {
		case <-s.done:
		default:
			if s.meta.Index == m.Snapshot.Meta.Index {
				return // the core resent it; the stream carries on
			}
			// Not waited for: it may be reading the live entries, and
			// the loop must keep ticking. It ends at its next check.
			close(s.stop)
		}
		delete(n.snaps.out, m.To)
	}
	s := &outStream{to: m.To, meta: m.Snapshot.Meta, acks: make(chan raft.Message, 16), stop: make(chan struct{}), done: make(chan struct{})}
	n.snaps.out[m.To] = s
	n.snaps.mu.Lock()
	n.snaps.stats.Active++
	n.snaps.mu.Unlock()
	// Reading the live entries may take a while: not on the loop goroutine.
	go n.runStream(s, m)
}

// buildChunks cuts the image and the live entries into chunks.
func (n *Node) buildChunks(s *outStream, m raft.Message) ([]raft.Message, StreamStats, error) {
	meta := m.Snapshot.Meta
	st := StreamStats{To: m.To, Index: meta.Index}
	var chunks []raft.Message
	add := func(data []byte, ents []raft.Entry) {
		chunks = append(chunks, raft.Message{
			Type: raft.MsgSnapChunk, From: n.cfg.Raft.ID, To: m.To, Term: m.Term, Index: meta.Index, LogTerm: meta.Term,
			Commit: uint64(len(chunks)), Snapshot: &raft.Snapshot{Meta: meta, Data: data}, Entries: ents,
		})
	}
	img := m.Snapshot.Data
	for len(img) > chunkBytes {
		add(img[:chunkBytes], nil)
		img = img[chunkBytes:]
	}
	add(img, nil) // possibly empty: every stream has a first chunk
	st.Bytes = len(m.Snapshot.Data)
	if n.cfg.SnapshotEntries != nil {
		var batch []raft.Entry
		size := 0
		err := n.cfg.SnapshotEntries(*m.Snapshot, func(e raft.Entry) error {
			select {
			case <-s.stop:
				return errStreamStopped
			case <-n.stop:
				return errStreamStopped
			default:
			}
			if e.Index > meta.Index {
				return fmt.Errorf("live entry %d above the compaction point %d", e.Index, meta.Index)
			}
			batch = append(batch, e)
			size += len(e.Data) + 32
			st.Entries++
			st.Bytes += len(e.Data)
			if size >= chunkBytes {
				add(nil, batch)
				batch, size = nil, 0
			}
			return nil
		})
		if err != nil {
			return nil, st, err
		}
		if len(batch) > 0 {
			add(nil, batch)
		}
	}
	chunks[len(chunks)-1].Context = chunkLast
	st.Chunks = len(chunks)
	return chunks, st, nil
}

// runStream sends chunks with at most chunkWindow unacknowledged,
// retransmitting from the last acknowledgement when acknowledgements stop.
// It gives up after a long silence: the core sends MsgSnap again later and
// a new stream resumes from what the follower kept.
func (n *Node) runStream(s *outStream, m raft.Message) {
	defer close(s.done)
	start := time.Now()
	chunks, stats, err := n.buildChunks(s, m)
	if err != nil {
		n.log.Error("cannot send snapshot", "to", m.To, "index", s.meta.Index, "err", err)
		n.finishStream(s, false)
		return
	}
	s.stats = stats
	n.log.Info("sending snapshot", "to", m.To, "index", s.meta.Index, "chunks", len(chunks), "bytes", stats.Bytes, "entries", stats.Entries)
	retransmit := 2 * time.Duration(n.cfg.Raft.ElectionTick) * n.cfg.TickInterval
	giveUp := 10 * retransmit
	var acked, next uint64
	dups := 0
	total := uint64(len(chunks))
	lastProgress := time.Now()
	timer := time.NewTimer(retransmit)
	defer timer.Stop()
	for acked < total {
		for next < total && next < acked+chunkWindow {
			n.cfg.Transport.Send([]raft.Message{chunks[next]})
			next++
		}
		select {
		case ack := <-s.acks:
			if ack.Reject {
				// The follower holds the state already (its commit index
				// passed the snapshot's): nothing more to send.
				n.finishStream(s, false)
				return
			}
			a := ack.Commit
			switch {
			case a > acked:
				acked, dups = min(a, total), 0
				lastProgress = time.Now()
			case a < acked:
				// The follower holds fewer chunks than it said (it dropped
				// a stream it could not use): start again from there.
				s.stats.Retransmitted += int(next - a)
				acked, next, dups = a, a, 0
			case a < next:
				// A chunk after the acknowledged ones arrived but not the
				// next: one was lost. Go back after a couple of signs.
				if dups++; dups >= 2 {
					s.stats.Retransmitted += int(next - acked)
					next, dups = acked, 0
				}
			}
		case <-timer.C:
			if time.Since(lastProgress) > giveUp {
				n.log.Warn("snapshot stream stalled; the core will send it again", "to", s.to, "index", s.meta.Index, "acked", acked, "chunks", total)
				n.finishStream(s, false)
				return
			}
			s.stats.Retransmitted += int(next - acked)
			next = acked
			timer.Reset(retransmit)
			continue
		case <-s.stop:
			n.finishStream(s, false)
			return
		case <-n.stop:
			n.finishStream(s, false)
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(retransmit)
	}
	s.stats.Duration = time.Since(start)
	n.log.Info("snapshot sent", "to", s.to, "index", s.meta.Index, "duration", s.stats.Duration, "bytes", s.stats.Bytes)
	n.finishStream(s, true)
}

func (n *Node) finishStream(s *outStream, ok bool) {
	n.snaps.mu.Lock()
	defer n.snaps.mu.Unlock()
	n.snaps.stats.Active--
	if ok {
		n.snaps.stats.Sent++
		n.snaps.stats.LastSent = s.stats
	}
}

// stepDriver handles the messages the core does not see. It reports
// whether m was one.
func (n *Node) stepDriver(m raft.Message) bool {
	switch m.Type {
	case raft.MsgSnapChunk:
		n.receiveChunk(m)
		return true
	case raft.MsgSnapChunkResp:
		if s, ok := n.snaps.out[m.From]; ok && s.meta.Index == m.Index && s.meta.Term == m.LogTerm {
			select {
			case s.acks <- m:
			default: // a later acknowledgement will say as much
			}
		}
		return true
	case raft.MsgSnap:
		// Snapshots come as chunks, whose last one becomes the core's
		// MsgSnap here; a whole one from the wire is not ours.
		n.log.Warn("dropping a MsgSnap from the wire", "from", m.From)
		return true
	}
	return false
}

// receiveChunk stages one chunk and acknowledges what is held.
func (n *Node) receiveChunk(m raft.Message) {
	if m.Snapshot == nil || m.Term < n.r.Term() {
		return // a deposed leader's stream
	}
	meta := m.Snapshot.Meta
	in := n.snaps.in
	// A stream resumes only from the same leader: two leaders' images of
	// the same point need not be byte for byte the same.
	if in == nil || in.meta.Index != meta.Index || in.meta.Term != meta.Term || in.leader != m.From {
		if meta.Index <= n.r.BasicStatus().HardState.Commit {
			// We have what the snapshot holds: stop the stream, and let the
			// core tell the leader where our log stands (it answers a
			// MsgSnap at or below its commit index with that index).
			n.ackChunk(m, 0, true)
			if err := n.r.Step(raft.Message{Type: raft.MsgSnap, From: m.From, To: m.To, Term: m.Term, Snapshot: &raft.Snapshot{Meta: meta}}); err != nil {
				n.log.Warn("snapshot answer", "from", m.From, "err", err)
			}
			return
		}
		if m.Commit != 0 {
			// A stream of a snapshot we hold nothing of: ask for it from
			// the start.
			n.ackChunk(m, 0, false)
			return
		}
		in = &inStream{leader: m.From, meta: meta, started: time.Now()}
		n.snaps.in = in
	}
	if m.Commit == in.next && !in.complete {
		if len(m.Entries) == 0 {
			in.image = append(in.image, m.Snapshot.Data...)
		} else {
			in.entries = append(in.entries, m.Entries...)
		}
		in.bytes += len(m.Snapshot.Data)
		for _, e := range m.Entries {
			in.bytes += len(e.Data)
		}
		in.next++
		in.complete = m.Context&chunkLast != 0
	}
	n.ackChunk(m, in.next, false)
	if in.complete && m.Commit+1 == in.next {
		snap := &raft.Snapshot{Meta: in.meta, Data: in.image}
		if n.cfg.CheckSnapshot != nil {
			if err := n.cfg.CheckSnapshot(*snap, in.entries); err != nil {
				// Refused before the core or the log see it: the member
				// stays as it was, and the leader sends a snapshot again.
				n.log.Error("received snapshot refused", "from", m.From, "index", meta.Index, "err", err)
				n.snaps.in = nil
				return
			}
		}
		// Hand the core the snapshot; if it takes it, Ready.Snapshot
		// installs this stream, which new chunks no longer change.
		n.snaps.handed, n.snaps.in = in, nil
		if err := n.r.Step(raft.Message{Type: raft.MsgSnap, From: m.From, To: m.To, Term: m.Term, Snapshot: snap}); err != nil {
			n.log.Warn("snapshot refused", "from", m.From, "index", meta.Index, "err", err)
		}
	}
}

func (n *Node) ackChunk(m raft.Message, held uint64, notNeeded bool) {
	n.cfg.Transport.Send([]raft.Message{{
		Type: raft.MsgSnapChunkResp, From: n.cfg.Raft.ID, To: m.From, Term: n.r.Term(),
		Index: m.Index, LogTerm: m.LogTerm, Commit: held, Reject: notNeeded,
	}})
}

// errStreamStopped ends the reading of a stream that was replaced or whose
// node stopped.
var errStreamStopped = errors.New("node: snapshot stream stopped")

// errNoStaged is returned when the core installs a snapshot the node did not
// stage, which only a bug can cause.
var errNoStaged = errors.New("node: the core installed a snapshot that was not received")

// installSnapshot replaces the log and the application's state with the
// staged snapshot the core accepted.
func (n *Node) installSnapshot(snap raft.Snapshot) error {
	in := n.snaps.handed
	if in == nil || !in.complete || in.meta.Index != snap.Meta.Index || in.meta.Term != snap.Meta.Term {
		return fmt.Errorf("%w (index %d)", errNoStaged, snap.Meta.Index)
	}
	i := 0
	err := n.cfg.Storage.Install(snap, func() (raft.Entry, bool, error) {
		if i == len(in.entries) {
			return raft.Entry{}, false, nil
		}
		i++
		return in.entries[i-1], true, nil
	})
	if err != nil {
		return fmt.Errorf("node: install snapshot %d in the log: %w", snap.Meta.Index, err)
	}
	if n.cfg.ApplySnapshot != nil {
		if err := n.cfg.ApplySnapshot(snap, in.entries); err != nil {
			return fmt.Errorf("node: install snapshot %d: %w", snap.Meta.Index, err)
		}
	}
	n.snaps.handed = nil
	n.snaps.mu.Lock()
	n.snaps.stats.Received++
	n.snaps.stats.LastInstalled = StreamStats{From: in.leader, Index: snap.Meta.Index, Chunks: int(in.next), Entries: len(in.entries), Bytes: in.bytes, Duration: time.Since(in.started)}
	n.snaps.mu.Unlock()
	n.log.Info("snapshot installed", "index", snap.Meta.Index, "entries", len(in.entries), "bytes", in.bytes, "duration", time.Since(in.started))
	return nil
}

// stopStreams ends every outgoing stream: a member that stopped leading has
// nothing to send that a follower would take.
func (n *Node) stopStreams() {
	for to, s := range n.snaps.out {
		select {
		case <-s.done:
		default:
			close(s.stop)
		}
		delete(n.snaps.out, to)
	}
}
