package log

import "github.com/copycat-go/copycat/runtime/raft"

// Store is the durable log a server's driver writes after each Ready batch
// and the core reads through raft.Storage, with the log cleaning the state
// machine drives (Compact, Clean) and the snapshot a lagging member installs
// (Install). Log keeps it on disk; Memory keeps it in memory for tests and
// simulations. Both are safe for concurrent use.
type Store interface {
	raft.Storage

	// Save persists one Ready batch and returns once all of it is durable.
	// Entries come first: if ents[0].Index is at or below LastIndex, the
	// conflicting suffix from ents[0].Index is dropped before the batch is
	// written; entries at or below the compaction point are ignored. The hard
	// state is then saved unless it is empty. ents must be contiguous with
	// non-decreasing terms and start at most at LastIndex()+1. The store keeps
	// the entries (and their Data) as given: callers must not modify them.
	Save(hs raft.HardState, ents []raft.Entry) error

	// SetCompaction records meta as the compaction point C and drops every
	// entry at or below C from the core's view: FirstIndex becomes C+1 and
	// Term(C) answers meta.Term. If the log does not hold entry C with term
	// meta.Term (C is beyond LastIndex, or the entry there conflicts), the
	// whole log is dropped and restarts after C (§7, installing a snapshot).
	// meta.Index must lie above the current compaction point. No entry at or
	// below C is kept for Compacted, and the image is dropped (Snapshot's
	// Data is nil).
	//
	// Deprecated: use Compact, which keeps the live entries and the state
	// image, and Install for a snapshot from another member. SetCompaction
	// stays until runtime/node calls those.
	SetCompaction(meta raft.SnapshotMeta) error

	// Compact records snap.Meta as the compaction point C and snap.Data as
	// the state image at C, durably, replacing the previous point and image.
	// Entries at or below C leave the core's view (FirstIndex = C+1,
	// Term(C) = snap.Meta.Term, Snapshot() returns snap including Data) but
	// stay stored and readable through Compacted until Clean drops the ones
	// the caller reports dead. The log must hold entry C with term
	// snap.Meta.Term and C must lie above the current compaction point;
	// otherwise an error (wrapping raft.ErrCompacted or raft.ErrUnavailable
	// for a point at or below the current one or beyond the last entry).
	// An empty Data means no image: Snapshot's Data is then nil. The store
	// keeps Data as given: callers must not modify it.
	Compact(snap raft.Snapshot) error

	// Install replaces the whole log with a snapshot taken on another
	// member: the image snap plus the live entries at or below
	// snap.Meta.Index, delivered in increasing index order by next (ok false
	// at the end; entries above snap.Meta.Index, out of order or with terms
	// going down or above snap.Meta.Term are an error, and so is an error
	// from next, which Install wraps). Everything held before (entries,
	// image) is dropped; the hard state is kept. snap.Meta.Index must lie
	// above the current compaction point. Crash-safe: after a crash at any
	// point Open finds either the old log or the new one, whole. Entries are
	// written as they arrive, so a stream larger than memory is fine.
	Install(snap raft.Snapshot, next func() (e raft.Entry, ok bool, err error)) error

	// Compacted calls fn in index order for every entry still stored at or
	// below the compaction point (cleaning may have dropped some; entries
	// not yet cleaned are all there — callers filter with their live set).
	// It stops at fn's first error and returns it. fn runs without the
	// store's locks held: it may be slow (a stream to a follower), and the
	// store keeps serving Save, reads and Clean meanwhile; what it sees is
	// the compaction point as of the call.
	Compacted(fn func(raft.Entry) error) error

	// Clean drops entries at or below the compaction point that live
	// reports dead (live(index) == false), giving their space back; live is
	// only ever asked about indexes at or below the compaction point. Log
	// rewrites the sealed segments that lie wholly at or below it and whose
	// live fraction is below Options.CleanThreshold into new files holding
	// only their live entries, merging small neighbours; Memory drops every
	// dead entry. Clean is meant to run on a background goroutine: Save and
	// the reads go on meanwhile, held up only by the short swap of each
	// rewritten file, whose longest hold CleanStats reports. Clean, Compact
	// and Install serialize among themselves. Liveness must be monotonic: an
	// entry reported dead is never reported live again.
	Clean(point uint64, live func(index uint64) bool) (CleanStats, error)

	// Usage reports the operator's view of the store: its segments (Log
	// only), the image, the totals. With live set it also counts the live
	// entries (entries above the compaction point count as live); it asks
	// live about every stored index at or below the compaction point.
	Usage(live func(index uint64) bool) (Usage, error)

	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

var (
	_ Store = (*Log)(nil)
	_ Store = (*Memory)(nil)
)
