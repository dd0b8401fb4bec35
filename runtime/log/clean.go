package log

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// CleanStats reports what one Clean did.
type CleanStats struct {
	// SegmentsRewritten is the number of segments replaced: each was read
	// and its live entries copied into a new file.
	SegmentsRewritten int
	// SegmentsMerged is how many of those were rewritten together with a
	// neighbour into one file.
	SegmentsMerged int
	// SegmentsWritten is the number of new files.
	SegmentsWritten int
	// SegmentsDeleted is the number of segment files that went away:
	// SegmentsRewritten minus SegmentsWritten.
	SegmentsDeleted int
	// EntriesKept and EntriesDropped count the entries of the rewritten
	// segments copied and left out.
	EntriesKept    int64
	EntriesDropped int64
	// BytesBefore is the size on disk of the rewritten segments, BytesAfter
	// that of the files that replaced them.
	BytesBefore int64
	BytesAfter  int64
	// Duration is the time Clean took.
	Duration time.Duration
	// LongestLockHold is the longest time Clean held the lock that Save and
	// the reads take: the longest pause it can have caused them.
	LongestLockHold time.Duration
}

func (st *CleanStats) held(d time.Duration) { st.LongestLockHold = max(st.LongestLockHold, d) }

// cleanGroup is adjacent segments rewritten into one file.
type cleanGroup []*segment

// Clean implements Store. It works in steps, taking the maintenance lock for
// each (so a Compact or Install waits at most one step) and the lock Save and
// the reads take only to copy the segment list and to swap a rewritten file
// in:
//
//  1. Plan: among the sealed segments wholly at or below the compaction
//     point C, those whose live fraction is below Options.CleanThreshold are
//     dirty. Runs of adjacent dirty or cleaned segments whose live data
//     (estimated from file size times live fraction) adds up to less than
//     SegmentSize form groups; a group is rewritten if it holds a dirty
//     segment or more than one segment (a merge).
//  2. For each group: write the live entries into a new cleaned segment
//     covering the group's whole range, under a temporary name, fsync it;
//     rename it over the group's first segment and fsync the directory;
//     swap it into the segment list; delete the group's other segments and
//     fsync the directory.
//
// A crash before the rename leaves a temporary file (Open deletes it), after
// it the new segment and the group's other segments, which its range covers
// (Open deletes them, see resolveOverlaps): either way every live entry is
// there, once.
func (l *Log) Clean(point uint64, live func(index uint64) bool) (st CleanStats, err error) {
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	groups, err := l.planClean(point, live, &st)
	if err != nil {
		return st, err
	}
	for _, g := range groups {
		if err := l.cleanStep(point, g, live, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// cleanCandidate is a segment Clean may rewrite, with what planning found.
type cleanCandidate struct {
	seg       *segment
	rewritten bool  // dirty, or already cleaned: may join a group
	dirty     bool  // live fraction below the threshold
	estimate  int64 // bytes of its live entries, estimated
}

// planClean picks the groups to rewrite.
func (l *Log) planClean(point uint64, live func(uint64) bool, st *CleanStats) ([]cleanGroup, error) {
	l.maint.Lock()
	defer l.maint.Unlock()
	l.mu.RLock()
	t := time.Now() // the hold, not the wait
	err := l.usable()
	c, floor := l.comp.meta.Index, l.comp.floor
	var segs []*segment
	if err == nil && l.comp.retains() && c == point {
		// Sealed segments wholly at or below C: a prefix of the list.
		for _, s := range l.segs {
			if !s.sealed || s.last > c {
				break
			}
			segs = append(segs, s)
		}
	}
	st.held(time.Since(t)) // before unlocking, which may hand the processor to a waiter
	l.mu.RUnlock()
	if err != nil {
		return nil, err
	}

	// Sealed segments at or below C never change and leave the log only
	// under maint: they can be read without mu.
	cands := make([]cleanCandidate, 0, len(segs))
	for _, s := range segs {
		if l.closing.Load() {
			return nil, ErrClosed
		}
		var stored, alive int64
		s.each(s.first, s.last, func(i uint64) bool {
			stored++
			if i >= floor && live(i) {
				alive++
			}
			return true
		})
		size, err := s.size()
		if err != nil {
			return nil, err
		}
		cd := cleanCandidate{seg: s}
		if stored > 0 {
			cd.dirty = float64(alive) < l.opts.CleanThreshold*float64(stored)
			cd.estimate = size * alive / stored
		}
		cd.rewritten = cd.dirty || s.cleaned
		cands = append(cands, cd)
	}

	var groups []cleanGroup
	var g cleanGroup
	var size int64
	dirty := false
	flush := func() {
		if dirty || len(g) > 1 {
			groups = append(groups, g)
		}
		g, size, dirty = nil, 0, false
	}
	for _, cd := range cands {
		if !cd.rewritten {
			flush()
			continue
		}
		if len(g) > 0 && size+cd.estimate >= l.opts.SegmentSize {
			flush()
		}
		g = append(g, cd.seg)
		size += cd.estimate
		dirty = dirty || cd.dirty
	}
	flush()
	return groups, nil
}

// cleanStep rewrites one group (see Clean).
func (l *Log) cleanStep(point uint64, g cleanGroup, live func(uint64) bool, st *CleanStats) error {
	l.maint.Lock()
	defer l.maint.Unlock()
	if l.closing.Load() {
		return ErrClosed
	}
	l.mu.RLock()
	t := time.Now()
	err := l.usable()
	at := l.groupAt(g)
	floor, c := l.comp.floor, l.comp.meta.Index
	st.held(time.Since(t))
	l.mu.RUnlock()
	if err != nil || at < 0 || c != point {
		// at < 0: an Install replaced the segments since planning; c !=
		// point: the compaction point moved, and live describes another.
		return err
	}

	first, last := g[0].first, g[len(g)-1].last
	path := filepath.Join(l.opts.Dir, segmentName(first))
	w, err := createCleaned(path+tmpSuffix, first, &l.opts, l.stable.id, writeBatchBytes)
	if err != nil {
		return err
	}
	var before, kept, dropped int64
	for _, s := range g {
		size, err := s.size()
		if err != nil {
			w.abort()
			return err
		}
		before += size
		s.each(s.first, s.last, func(i uint64) bool {
			if i < floor || i > c || !live(i) {
				dropped++
				return true
			}
			var e raft.Entry
			if e, err = s.getStored(i); err == nil {
				err = w.add(e)
			}
			kept++
			return err == nil
		})
		if err != nil {
			w.abort()
			return err
		}
	}
	out, err := w.finish(last)
	if err != nil {
		w.abort()
		return err
	}
	// Until the rename the log is as it was: an error leaves at most a
	// temporary file, which Open deletes or the next Clean overwrites.
	if err := fail("clean.before-rename"); err != nil {
		out.close()
		return err
	}
	if err := os.Rename(out.path, path); err != nil {
		out.close()
		return out.errorf("rename: %w", err)
	}
	out.path = path
	if err := syncDir(l.opts.Dir, l.opts.NoSync); err != nil {
		out.close()
		return l.failUnlocked(out.errorf("rename: sync directory: %w", err))
	}
	if err := fail("clean.after-rename"); err != nil {
		out.close()
		return l.failUnlocked(err)
	}
	after, err := out.size()
	if err != nil {
		out.close()
		return l.failUnlocked(err)
	}

	l.mu.Lock()
	t = time.Now()
	at = l.groupAt(g) // unchanged: segments at or below C leave the log only under maint
	l.segs = slices.Replace(l.segs, at, at+len(g), out)
	var unused []*segment
	for _, s := range g {
		if s.refs > 0 {
			s.retired = true // the last reader closes it
		} else {
			unused = append(unused, s)
		}
	}
	st.held(time.Since(t))
	l.mu.Unlock()
	// Out of the list, these can no longer be reached: close them without
	// the lock (each close is an munmap, an unlock and a close).
	var closeErr error
	for _, s := range unused {
		if err := s.close(); err != nil && closeErr == nil {
			closeErr = err
		}
	}

	for _, s := range g[1:] {
		if err := fail("clean.remove"); err != nil {
			return l.failUnlocked(err)
		}
		if err := os.Remove(s.path); err != nil {
			return l.failUnlocked(s.errorf("remove: %w", err))
		}
	}
	if len(g) > 1 {
		if err := syncDir(l.opts.Dir, l.opts.NoSync); err != nil {
			return l.failUnlocked(fmt.Errorf("log: clean: sync %s: %w", l.opts.Dir, err))
		}
		st.SegmentsMerged += len(g)
	}
	st.SegmentsRewritten += len(g)
	st.SegmentsWritten++
	st.SegmentsDeleted += len(g) - 1
	st.EntriesKept += kept
	st.EntriesDropped += dropped
	st.BytesBefore += before
	st.BytesAfter += after
	if closeErr != nil {
		l.logger.Warn("log: closing a rewritten segment", "err", closeErr)
	}
	return nil
}

// groupAt returns the position of g in the segment list, or -1 if its
// segments are no longer there, in order. Callers hold mu.
func (l *Log) groupAt(g cleanGroup) int {
	k := slices.Index(l.segs, g[0])
	if k < 0 || k+len(g) > len(l.segs) {
		return -1
	}
	for j, s := range g {
		if l.segs[k+j] != s {
			return -1
		}
	}
	return k
}

// failUnlocked is fail for callers that do not hold mu.
func (l *Log) failUnlocked(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail(err)
}
