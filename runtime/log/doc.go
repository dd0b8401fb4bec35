// Package log is the durable Raft log: the raft.Storage the core reads, and
// the writes a server's driver makes after each Ready batch (Store).
//
// # Layout
//
// A log is a directory holding
//
//	stable.db                      hard state, compaction point, identity
//	segment-00000000000000000001.db
//	segment-00000000000000052731.db  entries from 52731 on (the head)
//
// Every file is a github.com/hashicorp/raft-boltdb/v2 BoltStore. stable.db is
// used only through its stable-store API (Set/Get): a format record, the
// log's random identity, the hard state (term, vote and commit in one
// record, so one fsync) and the compaction point (msgpack). Each segment
// covers a contiguous index range starting at the index in its name, which
// it also records, together with the format and the log's identity, so that
// a foreign bolt file, a renamed file or a file from another log's
// directory is refused by name. The head segment takes appends, one
// StoreLogs transaction (one fsync) per Save; once its file passes
// Options.SegmentSize, the next batch starts a new segment.
//
// Entries are stored as raft-boltdb's raft.Log: Index and Term in its own
// fields, our Type, Timestamp and Data msgpack-encoded by hand into its Data
// (a format version, then an array of the three fields). A cache of the most
// recent entries serves the core's reads of what was just appended.
//
// # Crash ordering
//
// Bolt transactions are atomic; what a crash can cut short are the steps
// spanning files, each ordered so that Open recovers a prefix of what was
// acknowledged:
//
//   - Save writes entries, then the hard state (see Log.Save for why either
//     order is safe and why this one).
//   - A new segment is written under a temporary name with its records and
//     renamed into place, then the directory is synced. Open deletes
//     temporary files; an empty head segment is valid.
//   - Truncation deletes the segments above the truncation point highest
//     first, syncing the directory after each, then deletes the suffix of the
//     segment keeping a prefix in one transaction.
//   - SetCompaction writes the compaction point C first, then deletes
//     segments: those wholly at or below C, lowest first; or, if the log
//     does not hold entry C with C's term (a follower installing a
//     snapshot), all of them, highest first. Open repeats this step, so an
//     interrupted compaction is finished.
//
// # Damaged files
//
// bbolt trusts its files: a damaged one can make it fault or panic, and with
// the freelist not synced (the tuning Options applies by default) in a
// goroutine where no recover() can catch it. So Open first reads every bolt
// file with bounds-checked Go (checkBolt), checking the structure bbolt
// relies on, and checks the format and identity records before bbolt opens
// the file. The segments are then checked against each other (no gaps, terms
// never going down). Errors name the file and wrap ErrCorrupt or ErrForeign.
// Bolt does not checksum values. The hard state and compaction point carry
// a CRC-32C, since a flipped term or vote would break Raft's safety
// silently; an entry damaged inside its value is found when it is decoded
// (ErrCorrupt) or, if only payload bytes changed, not at all.
//
// # Later: log cleaning
//
// Segments that straddle the compaction point keep their entries at or
// below it on disk, and bolt files never shrink. Log cleaning (see
// DESIGN.md) will rewrite sealed segments at or below the compaction point
// into new files holding only their live entries, swapped in by rename and
// directory sync, and merge small neighbours; those files will no longer
// hold contiguous indexes, and the checks here will learn that.
package log
