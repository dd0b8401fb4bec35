package raft

import (
	"errors"
	"fmt"
)

// raftLog is the core's view of the log: the durable part in Storage and an
// unstable tail of entries (and possibly a snapshot) that a Ready has handed
// out, or will hand out, for persisting.
type raftLog struct {
	storage  Storage
	unstable unstable
	// committed is the highest index known to be committed.
	committed uint64
	// applying is the highest index handed out for applying; applied is the
	// highest index the driver has reported applied through Advance.
	applying uint64
	applied  uint64
	// maxApplySize bounds the bytes of committed entries handed out per Ready.
	maxApplySize uint64
	// applyUnstable lets committed entries be handed out for applying before
	// they are durable here: right for a driver that persists a Ready before
	// applying it, wrong with asynchronous storage writes.
	applyUnstable bool
}

func newRaftLog(storage Storage, maxApplySize uint64, applyUnstable bool) (*raftLog, error) {
	first, err := storage.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: storage first index: %w", err)
	}
	last, err := storage.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("raft: storage last index: %w", err)
	}
	l := &raftLog{
		storage:       storage,
		unstable:      unstable{offset: last + 1, offsetInProgress: last + 1},
		committed:     first - 1,
		applying:      first - 1,
		applied:       first - 1,
		maxApplySize:  maxApplySize,
		applyUnstable: applyUnstable,
	}
	return l, nil
}

func (l *raftLog) firstIndex() uint64 {
	if l.unstable.snapshot != nil {
		return l.unstable.snapshot.Meta.Index + 1
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		panic(fmt.Sprintf("raft: storage first index: %v", err))
	}
	return i
}

func (l *raftLog) lastIndex() uint64 {
	if n := len(l.unstable.entries); n > 0 {
		return l.unstable.offset + uint64(n) - 1
	}
	if l.unstable.snapshot != nil {
		return l.unstable.snapshot.Meta.Index
	}
	i, err := l.storage.LastIndex()
	if err != nil {
		panic(fmt.Sprintf("raft: storage last index: %v", err))
	}
	return i
}

func (l *raftLog) lastTerm() uint64 {
	t, err := l.term(l.lastIndex())
	if err != nil {
		panic(fmt.Sprintf("raft: term of last index %d: %v", l.lastIndex(), err))
	}
	return t
}

// term returns the term of entry i, or an error if it is compacted or absent.
func (l *raftLog) term(i uint64) (uint64, error) {
	if t, ok := l.unstable.maybeTerm(i); ok {
		return t, nil
	}
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	if i > l.lastIndex() {
		return 0, ErrUnavailable
	}
	t, err := l.storage.Term(i)
	if err == nil || errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return t, err
	}
	panic(fmt.Sprintf("raft: storage term %d: %v", i, err))
}

// zeroTermOnMissing returns the term of i, or 0 if i is not in the log.
func (l *raftLog) zeroTermOnMissing(i uint64) uint64 {
	t, err := l.term(i)
	if err != nil {
		return 0
	}
	return t
}

func (l *raftLog) matchTerm(i, term uint64) bool {
	t, err := l.term(i)
	return err == nil && t == term
}

// isUpToDate reports whether a log ending at (lasti, term) is at least as
// up to date as ours (§5.4.1).
func (l *raftLog) isUpToDate(lasti, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || (term == lt && lasti >= l.lastIndex())
}

// maybeAppend handles a leader's append of ents after (index, logTerm). It
// returns the new last index and whether the log matched; a truncation
// index > 0 says that entries from there on were replaced.
func (l *raftLog) maybeAppend(index, logTerm, committed uint64, ents []Entry) (last uint64, ok bool, truncatedAt uint64) {
	if !l.matchTerm(index, logTerm) {
		return 0, false, 0
	}
	last = index + uint64(len(ents))
	ci := l.findConflict(ents)
	switch {
	case ci == 0:
	case ci <= l.committed:
		panic(fmt.Sprintf("raft: entry %d conflicts with committed entry (committed %d)", ci, l.committed))
	default:
		off := index + 1
		if ci <= l.lastIndex() {
			truncatedAt = ci
		}
		l.append(ents[ci-off:]...)
	}
	l.commitTo(min(committed, last))
	return last, true, truncatedAt
}

// findConflict returns the index of the first entry of ents that is not in
// the log with the same term, or 0 if all are.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for _, e := range ents {
		if !l.matchTerm(e.Index, e.Term) {
			return e.Index
		}
	}
	return 0
}

// findConflictByTerm returns the largest index <= index whose term is <= term,
// the best guess of where a log ending in a term-`term` entry at `index`
// matches ours (fast back-off, §5.3).
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	for ; index > 0; index-- {
		t, err := l.term(index)
		if err != nil {
			return index, 0
		}
		if t <= term {
			return index, t
		}
	}
	return 0, 0
}

func (l *raftLog) append(ents ...Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		panic(fmt.Sprintf("raft: append after %d is below committed %d", after, l.committed))
	}
	l.unstable.truncateAndAppend(ents)
	return l.lastIndex()
}

func (l *raftLog) commitTo(i uint64) bool {
	if i <= l.committed {
		return false
	}
	if i > l.lastIndex() {
		panic(fmt.Sprintf("raft: commit %d beyond last index %d", i, l.lastIndex()))
	}
	l.committed = i
	return true
}

// maybeCommit commits up to i if entry i has the given term (§5.4.2).
func (l *raftLog) maybeCommit(i, term uint64) bool {
	if i > l.committed && l.zeroTermOnMissing(i) == term {
		return l.commitTo(i)
	}
	return false
}

// slice returns entries in [lo, hi) limited by maxSize.
func (l *raftLog) slice(lo, hi, maxSize uint64) ([]Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	if lo < l.firstIndex() {
		return nil, ErrCompacted
	}
	if hi > l.lastIndex()+1 {
		panic(fmt.Sprintf("raft: slice [%d,%d) beyond last index %d", lo, hi, l.lastIndex()))
	}
	var ents []Entry
	if lo < l.unstable.offset {
		stored, err := l.storage.Entries(lo, min(hi, l.unstable.offset), maxSize)
		if err != nil {
			if errors.Is(err, ErrCompacted) {
				return nil, err
			}
			panic(fmt.Sprintf("raft: storage entries [%d,%d): %v", lo, min(hi, l.unstable.offset), err))
		}
		if uint64(len(stored)) < min(hi, l.unstable.offset)-lo {
			return stored, nil // size limit reached
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		u := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) > 0 {
			ents = append(append([]Entry(nil), ents...), u...)
		} else {
			ents = u
		}
	}
	return limitSize(ents, maxSize), nil
}

// applyLimit is the highest index that may be handed out for applying: the
// commit index, or with asynchronous storage writes the last entry that is
// also durable here, so that the application never runs ahead of its own log
// (a crash would leave it with state its log cannot rebuild).
func (l *raftLog) applyLimit() uint64 {
	if l.applyUnstable {
		return l.committed
	}
	return min(l.committed, l.unstable.offset-1)
}

// hasNextApply reports whether committed entries wait to be handed out.
func (l *raftLog) hasNextApply() bool {
	return l.unstable.snapshot == nil && l.applyLimit() > l.applying
}

// nextApply returns the committed entries not yet handed out for applying.
func (l *raftLog) nextApply() []Entry {
	if !l.hasNextApply() {
		return nil
	}
	hi := l.applyLimit()
	ents, err := l.slice(l.applying+1, hi+1, l.maxApplySize)
	if err != nil {
		panic(fmt.Sprintf("raft: committed entries [%d,%d]: %v", l.applying+1, hi, err))
	}
	return ents
}

// restore replaces the log with a snapshot's compaction point.
func (l *raftLog) restore(s Snapshot) {
	l.committed = s.Meta.Index
	l.unstable.restore(s)
}

// unstable holds entries not yet persisted, starting at offset, and a
// snapshot not yet installed. With asynchronous storage writes a prefix of
// them may already be handed out for persisting and still be in flight:
// entries below offsetInProgress, and the snapshot if snapshotInProgress.
// Those are not handed out again; they leave unstable only once the driver
// reports them durable (stableTo, stableSnapTo).
type unstable struct {
	snapshot *Snapshot
	entries  []Entry
	offset   uint64
	// offsetInProgress is the index of the first entry not yet handed out:
	// offset <= offsetInProgress <= offset+len(entries).
	offsetInProgress   uint64
	snapshotInProgress bool
}

func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Meta.Index == i {
			return u.snapshot.Meta.Term, true
		}
		return 0, false
	}
	if i-u.offset >= uint64(len(u.entries)) {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// nextEntries returns the entries not yet handed out for persisting.
func (u *unstable) nextEntries() []Entry {
	k := u.offsetInProgress - u.offset
	if k >= uint64(len(u.entries)) {
		return nil
	}
	return u.entries[k:len(u.entries):len(u.entries)]
}

// nextSnapshot returns the snapshot if it is not yet handed out.
func (u *unstable) nextSnapshot() *Snapshot {
	if u.snapshot == nil || u.snapshotInProgress {
		return nil
	}
	return u.snapshot
}

// acceptInProgress marks everything unstable as handed out for persisting.
func (u *unstable) acceptInProgress() {
	u.offsetInProgress = u.offset + uint64(len(u.entries))
	u.snapshotInProgress = u.snapshot != nil
}

// stableTo marks entries up to (i, t) persisted. A mismatching term means the
// entry was replaced after the Ready was handed out; it stays unstable, and
// so do the entries before it, until the write of the replacement is
// reported (by the log matching property a later write never holds (i, t)
// again once it was replaced).
func (u *unstable) stableTo(i, t uint64) {
	if i < u.offset || i-u.offset >= uint64(len(u.entries)) {
		return
	}
	if u.entries[i-u.offset].Term != t {
		return
	}
	n := i + 1 - u.offset
	u.entries = u.entries[n:]
	u.offset = i + 1
	u.offsetInProgress = max(u.offsetInProgress, u.offset)
	if len(u.entries) == 0 {
		u.entries = nil // let the backing array go
	}
}

func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Meta.Index == i {
		u.snapshot = nil
		u.snapshotInProgress = false
	}
}

func (u *unstable) restore(s Snapshot) {
	u.offset = s.Meta.Index + 1
	u.offsetInProgress = u.offset
	u.entries = nil
	u.snapshot = &s
	u.snapshotInProgress = false
}

func (u *unstable) truncateAndAppend(ents []Entry) {
	after := ents[0].Index
	switch {
	case after == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case after <= u.offset:
		// Replace everything unstable: entries from `after` on are new, and the
		// durable ones at or above it will be overwritten by the driver's save.
		// Nothing of the new suffix is in flight; a write still in flight
		// holds replaced entries, which stableTo will not take for these.
		u.offset = after
		u.offsetInProgress = after
		u.entries = append([]Entry(nil), ents...)
	default:
		keep := u.slice(u.offset, after)
		u.entries = append(append([]Entry(nil), keep...), ents...)
		u.offsetInProgress = min(u.offsetInProgress, after)
	}
}

func (u *unstable) slice(lo, hi uint64) []Entry {
	return u.entries[lo-u.offset : hi-u.offset : hi-u.offset]
}
