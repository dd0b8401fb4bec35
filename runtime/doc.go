// Package runtime is the resource-facing API of Copycat: what a replicated
// resource's methods see (Commit, Session, Context), how a resource type
// describes itself to a server (ResourceType), the errors that cross the
// wire, and the consistency levels of queries. Generated code (copycatgen)
// and the built-in resources import it; the Raft machinery lives in its
// subpackages.
//
// # Determinism
//
// Resource methods run on the replicated state machine: one goroutine,
// entries applied in log order, identically on every member. A resource must
// therefore depend only on its own state and on what the runtime hands it:
// Commit.Time (the log's time, not the wall clock), Commit.Index, the calling
// Session, and timers scheduled through Context. It must not read the clock,
// use randomness, start goroutines or do I/O.
//
// # Log cleaning
//
// Every command is a Commit that stays live until released. A resource in
// Release mode calls Commit.Release when a later command supersedes the state
// a commit holds (a map put overwritten, a lock unlocked); replaying its live
// commits in index order must rebuild its state exactly. A resource in
// Snapshot mode (the default) is snapshotted at the compaction point instead.
package runtime
