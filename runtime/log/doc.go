// Package log is the durable Raft log: the raft.Storage the core reads, the
// writes a server's driver makes after each Ready batch, and the log
// cleaning its state machine drives (Store).
//
// # Layout
//
// A log is a directory holding
//
//	stable.db                        hard state, compaction point, identity
//	segment-00000000000000000001.db  a cleaned segment: the live entries of [1, 52730]
//	segment-00000000000000052731.db  entries from 52731 on (the head)
//	segment-00000000000000052731.journal  the head's journal: its entries, synced once per Save
//	image-<index>-<term>.snap        the state image at the compaction point
//
// Every .db file is a github.com/hashicorp/raft-boltdb/v2 BoltStore.
// stable.db is used only through its stable-store API (Set/Get): a format
// record, the log's random identity, the hard state (term, vote and commit
// in one record, so one fsync) and the compaction record (msgpack): the
// compaction point C, the lowest index kept at or below it, the image's size
// and CRC, and how far an Install got. Each segment covers a contiguous
// index range starting at the index in its name, which it also records,
// together with the format and the log's identity, so that a foreign bolt
// file, a renamed file or a file from another log's directory is refused by
// name. The head segment takes appends: each Save appends its batch to the
// head's journal with one fdatasync, and the entries reach the head's bolt
// file in larger transactions that a flusher goroutine commits off the Save
// path (see journal.go: a bolt commit syncs twice and rewrites pages, which
// made it most of a Save's cost).
// Once the head passes Options.SegmentSize, the next batch starts a new
// segment, and the old head is sealed — its bolt file written out and
// synced, its journal deleted — and never takes appends again.
//
// Entries are stored as raft-boltdb's raft.Log: Index and Term in its own
// fields, our Type, Timestamp and Data msgpack-encoded by hand into its Data
// (a format version, then an array of the three fields). A cache of the most
// recent entries serves the core's reads of what was just appended.
//
// # Log cleaning
//
// Compact moves the compaction point C up and stores the state image at it
// (see image.go for its format); entries at or below C leave the core's view
// but stay on disk, readable through Compacted, until Clean drops the ones
// the caller's live set reports dead. Clean rewrites the sealed segments
// that lie wholly at or below C and whose live fraction is below
// Options.CleanThreshold into cleaned segments holding only their live
// entries, merging small neighbours: the only way to give space back, since
// bolt files never shrink. A cleaned segment has its own format and records
// the index range it covers, so its holes are told from lost files; it lies
// at or below C and never changes. Install replaces the whole log with a
// snapshot from another member: its image and its live entries at or below
// its C, written as cleaned segments.
//
// Below C the segments still tile the index range from the lowest kept
// index, with holes only inside cleaned segments; above C they hold every
// entry. Open checks both, and that terms never go down.
//
// # Crash ordering
//
// Bolt transactions are atomic; what a crash can cut short are the steps
// spanning files, each ordered so that Open recovers a prefix of what was
// acknowledged, and the state before or after each compaction step:
//
//   - Save writes entries, then the hard state (see Log.Save for why either
//     order is safe and why this one). The entries are durable once the
//     journal's record is; Open rebuilds the head's bolt file from the
//     journal, which the bolt file may lag, and drops a last record a crash
//     cut short (see journal.go for how it is told from damage).
//   - Sealing a head writes its pending entries to its bolt file, syncs it,
//     then deletes the journal and syncs the directory. Open deletes a
//     journal below the last segment (a seal whose removal was lost), and
//     seals a non-empty last segment that has no journal.
//   - A new segment is written under a temporary name with its records and
//     renamed into place, then the directory is synced; then its journal,
//     the same way. Open deletes temporary files; an empty head segment is
//     valid, with or without its journal (Open creates a missing one).
//   - Truncation deletes the segments above the truncation point highest
//     first, syncing the directory after each, then deletes the suffix of the
//     segment keeping a prefix in one transaction.
//   - Compact writes the image (temporary file, fsync, rename, directory
//     fsync), then the compaction record naming it (the commit), then
//     deletes the previous image. Open deletes any image the record does not
//     name, so a crash leaves the point before or after, each with its image.
//   - Install writes the new segments under staging names
//     (segment-<first>.db.install) and the image, syncs the directory, then
//     commits by writing the compaction record marked "install phase 1".
//     Phase 1 deletes every old segment and image, then records phase 2;
//     phase 2 renames the staged segments into place, then records the
//     install done. Open repeats the phase the record names, and deletes
//     staged segments when it names none (an install that never committed):
//     the old log or the new one, whole.
//   - Clean writes each new cleaned segment under a temporary name and
//     fsyncs it, renames it over the first segment it replaces and syncs the
//     directory, then deletes the other segments it replaces (a merge) and
//     syncs the directory. A crash after the rename leaves those others
//     inside the new segment's range; Open deletes such segments, which lie
//     wholly inside a cleaned segment at or below C, and refuses any other
//     overlap.
//   - SetCompaction (deprecated) writes the compaction point C first, then
//     deletes segments: those wholly at or below C, lowest first; or, if the
//     log does not hold entry C with C's term (a follower installing a
//     snapshot), all of them, highest first; then the image. Open repeats
//     this step, so an interrupted compaction is finished.
//
// # Damaged files
//
// bbolt trusts its files: a damaged one can make it fault or panic, and with
// the freelist not synced (the tuning Options applies by default) in a
// goroutine where no recover() can catch it. So Open first reads every bolt
// file with bounds-checked Go (checkBolt), checking the structure bbolt
// relies on, and checks the format and identity records before bbolt opens
// the file. The segments are then checked against each other (no gaps, no
// overlaps but a merge's, terms never going down). Errors name the file and
// wrap ErrCorrupt or ErrForeign. Bolt does not checksum values. The hard
// state, the compaction record and a cleaned segment's range carry a
// CRC-32C, since a flipped term or vote would break Raft's safety silently
// and a flipped range would hide a lost file; the image has a CRC-32C over
// its header and one over its data. An entry damaged inside its value is
// found when it is decoded (ErrCorrupt) or, if only payload bytes changed,
// not at all.
package log
