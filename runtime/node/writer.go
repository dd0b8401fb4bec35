package node

import (
	"fmt"
	"sync"

	"github.com/copycat-go/copycat/runtime/raft"
)

// The node persists Readys on a writer goroutine (raft.Config
// AsyncStorageWrites) so that its loop keeps stepping while the disk works:
// a leader takes new proposals and followers' acknowledgements, a follower
// takes the next append, while the previous write's fsyncs run. Readys are
// written in the order the core handed them out; whatever queued up during
// one Save is merged into the next (group commit), so batches grow with the
// load by themselves.
//
// What each write vouches for leaves only once it is durable: the writer
// sends a Ready's MessagesAfterSave (a follower's acknowledgement, a vote)
// after the Save that made that Ready durable returns, and only then reports
// the write to the loop, which tells the core (AdvanceWrite) — a leader counts
// its own copy from there. A failed Save stops the node without sending or
// reporting anything of it.

// write is one Ready's share of persistence.
type write struct {
	rd raft.Ready // HardState, Entries and MessagesAfterSave (without MsgSnap)
	// snaps are the MsgSnap among its MessagesAfterSave: streaming them
	// needs the loop's state, so the loop starts them once the write is done.
	snaps []raft.Message
}

// writer persists writes in order on its own goroutine.
type writer struct {
	st   Storage
	tr   Transport
	wake chan struct{} // capacity 1: work was queued
	// done is signalled (capacity 1) when completed writes or an error wait
	// for the loop.
	done    chan struct{}
	stop    chan struct{}
	stopped chan struct{}

	mu        sync.Mutex
	queue     []write // handed over, not yet taken
	completed []write // durable, messages sent, not yet taken by the loop
	err       error
	first     uint64 // Storage.FirstIndex after the last write
	stats     WriteStats
}

// WriteStats counts the node's storage writes.
type WriteStats struct {
	// Saves is the number of Storage.Save calls, Readys the number of
	// Readys they persisted (several are merged into one Save under load),
	// and Entries the entries written.
	Saves, Readys, Entries uint64
}

func newWriter(st Storage, tr Transport) *writer {
	return &writer{
		st: st, tr: tr,
		wake: make(chan struct{}, 1), done: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues a write. Called by the loop.
func (w *writer) push(wr write) {
	w.mu.Lock()
	w.queue = append(w.queue, wr)
	w.mu.Unlock()
	signal(w.wake)
}

// take returns the writes completed since the last call, the storage's first
// index after them, and the error that stopped the writer, if any. Called by
// the loop.
func (w *writer) take() ([]write, uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.completed
	w.completed = nil
	return c, w.first, w.err
}

// halt stops the writer once its current Save returns and waits for it.
func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.stopped
}

func (w *writer) run() {
	defer close(w.stopped)
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		}
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			w.mu.Lock()
			batch := w.queue
			w.queue = nil
			w.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			if err := w.persist(batch); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				signal(w.done)
				return
			}
		}
	}
}

// persist saves a batch of writes with one Save, then sends their messages.
func (w *writer) persist(batch []write) error {
	hs, ents := mergeWrites(batch)
	if len(ents) > 0 || !hs.IsEmpty() {
		if err := w.st.Save(hs, ents); err != nil {
			return fmt.Errorf("node: save: %w", err)
		}
	}
	for _, b := range batch {
		if len(b.rd.MessagesAfterSave) > 0 {
			w.tr.Send(b.rd.MessagesAfterSave)
		}
	}
	first, err := w.st.FirstIndex()
	if err != nil {
		return fmt.Errorf("node: first index after a save: %w", err)
	}
	w.mu.Lock()
	w.completed = append(w.completed, batch...)
	w.first = first
	w.stats.Saves++
	w.stats.Readys += uint64(len(batch))
	w.stats.Entries += uint64(len(ents))
	w.mu.Unlock()
	signal(w.done)
	return nil
}

// mergeWrites combines the writes' entries and hard states into what one
// Save makes durable: a later Ready's entries replace an earlier one's from
// their first index on (a follower's log was overwritten meanwhile), and the
// last hard state is the newest.
func mergeWrites(batch []write) (raft.HardState, []raft.Entry) {
	var hs raft.HardState
	var ents []raft.Entry
	merged := false // ents is our own copy, safe to append to
	for _, b := range batch {
		if !b.rd.HardState.IsEmpty() {
			hs = b.rd.HardState
		}
		next := b.rd.Entries
		switch {
		case len(next) == 0:
		case len(ents) == 0:
			ents = next
		default:
			first := ents[0].Index
			keep := 0
			if next[0].Index > first {
				keep = int(min(next[0].Index-first, uint64(len(ents))))
			}
			// The Readys' slices belong to the core: copy before appending.
			if !merged {
				ents = append(make([]raft.Entry, 0, keep+len(next)), ents[:keep]...)
				merged = true
			} else {
				ents = ents[:keep]
			}
			ents = append(ents, next...)
		}
	}
	return hs, ents
}

// WriteStats returns counts of the node's storage writes.
func (n *Node) WriteStats() WriteStats {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	return n.w.stats
}
