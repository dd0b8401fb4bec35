package log

import "github.com/copycat-go/copycat/runtime/raft"

// Store is the durable log a server's driver writes after each Ready batch
// and the core reads through raft.Storage. Log keeps it on disk; Memory keeps
// it in memory for tests and simulations. Both are safe for concurrent use.
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
	// meta.Index must lie above the current compaction point.
	SetCompaction(meta raft.SnapshotMeta) error

	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

var (
	_ Store = (*Log)(nil)
	_ Store = (*Memory)(nil)
)
