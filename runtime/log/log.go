package log

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Log is the durable Raft log: stable.db for the hard state and compaction
// point, a sequence of segment files for the entries, and an image file for
// the state at the compaction point (see the package documentation). It is
// safe for concurrent use; the driver is expected to be its only writer,
// with Clean on a goroutine of its own.
//
// After a write fails part way (an I/O error, a full disk), the Log refuses
// every further call with that error: its files may no longer match its
// memory. Close it and Open the directory again, which recovers.
type Log struct {
	opts   Options
	logger *slog.Logger

	// maint serializes the operations that replace segments, the image or
	// the compaction point — Compact, SetCompaction, Install, each step of
	// Clean — and Close. It is taken before mu, and held across file writes
	// that mu must not be held for, so Save and the reads go on meanwhile.
	maint sync.Mutex
	// closing is set first thing by Close, so that Clean and Compacted,
	// which work outside mu, stop early.
	closing atomic.Bool

	mu     sync.RWMutex
	stable *stable
	segs   []*segment // ascending ranges, contiguous; only the last (the head) may be empty
	cache  cache
	hs     raft.HardState // as given to the last Save; Commit may be ahead of the disk
	saved  raft.HardState // as last written to stable.db
	comp   compaction     // compaction point C, the entries kept below it, the image
	image  []byte         // the image at C, as Snapshot returns it
	closed bool
	failed error

	// The flusher writes the head's pending entries to its bolt file off
	// the Save path (see journal.go); flushDone, a condition on mu, tells
	// waiters a flush ended.
	flushWake chan struct{}
	flushStop chan struct{}
	flushWG   sync.WaitGroup
	stopOnce  sync.Once
	flushDone *sync.Cond
}

// Open opens the log in opts.Dir, creating it if the directory holds no log,
// and recovers from an interrupted write: leftover temporary files are
// removed, and the steps a crash can cut short (a roll, a truncation across
// segments, a compaction, an install, a merge) are finished or undone, so
// the result is a prefix of what was acknowledged (see the package
// documentation). Damaged or foreign files are reported with an error
// naming them, wrapping ErrCorrupt or ErrForeign.
func Open(opts Options) (*Log, error) {
	o := opts
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	bo := *o.BoltOptions // ours to change: the caller's stays as given
	bo.NoSync = o.NoSync
	o.BoltOptions = &bo
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("log: open %s: %w", o.Dir, err)
	}
	files, err := scanDir(o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	// Without stable.db, any other file of ours means damage: only a
	// directory holding none of them is a new log.
	fresh := len(files.segments) == 0 && len(files.installs) == 0 && len(files.images) == 0
	st, err := openStable(filepath.Join(o.Dir, stableFile), &o, fresh)
	if err != nil {
		return nil, err
	}
	l := &Log{opts: o, logger: o.Logger, stable: st, cache: cache{max: o.CacheSize},
		flushWake: make(chan struct{}, 1), flushStop: make(chan struct{})}
	l.flushDone = sync.NewCond(&l.mu)
	if err := l.load(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.flushWG.Add(1)
	go l.flusher()
	return l, nil
}

// flusher writes the head's pending entries to its bolt file whenever a
// Save reports enough of them, until stopFlusher.
func (l *Log) flusher() {
	defer l.flushWG.Done()
	for {
		select {
		case <-l.flushStop:
			return
		case <-l.flushWake:
		}
		l.flushHead()
	}
}

// flushHead writes what the head has pending to its bolt file, holding mu
// only to take the batch and to record it written: Saves, which only add
// to pending, and reads go on meanwhile.
func (l *Log) flushHead() {
	l.mu.Lock()
	n := len(l.segs)
	if l.usable() != nil || n == 0 {
		l.mu.Unlock()
		return
	}
	h := l.segs[n-1]
	if h.journal == nil || h.flushing || len(h.pending) == 0 {
		l.mu.Unlock()
		return
	}
	batch := h.pending[:len(h.pending):len(h.pending)]
	h.flushing = true
	l.mu.Unlock()

	if flushHook != nil {
		flushHook()
	}
	err := h.put(batch)
	var size int64
	if err == nil {
		size, err = h.statSize()
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	h.flushing = false
	l.flushDone.Broadcast()
	if err != nil {
		if l.failed == nil && !l.closed {
			l.fail(err)
			l.logger.Error("log: writing the head's entries to its bolt file failed; the log refuses further writes", "err", err)
		}
		return
	}
	h.flushed(len(batch), size)
}

// awaitFlush waits until the flusher is not writing. Callers hold mu for
// writing and call it before they look at the log's state, never in the
// middle of a change: waiting releases mu, and the flusher cannot start
// again until they release it themselves.
func (l *Log) awaitFlush() {
	for {
		n := len(l.segs)
		if n == 0 || !l.segs[n-1].flushing {
			return
		}
		if flushWaitHook != nil {
			flushWaitHook()
		}
		l.flushDone.Wait()
	}
}

// touchesFlush reports whether a Save of entries from idx would change
// what a flush in progress is writing: a truncation, or sealing the head.
// A plain append only adds to pending, which the flusher allows. Callers
// hold mu.
func (l *Log) touchesFlush(idx uint64) bool {
	n := len(l.segs)
	if n == 0 || !l.segs[n-1].flushing {
		return false
	}
	full, err := l.full(l.segs[n-1])
	return idx <= l.lastIndex() || full || err != nil
}

// full reports whether the head h is at Options.SegmentSize, when the next
// Save starts a new segment.
func (l *Log) full(h *segment) (bool, error) {
	size, err := h.size()
	return size >= l.opts.SegmentSize, err
}

// stopFlusher stops the flusher and waits for it. Callers do not hold mu.
func (l *Log) stopFlusher() {
	l.stopOnce.Do(func() { close(l.flushStop) })
	l.flushWG.Wait()
}

// usable reports why the Log cannot serve a call. Callers hold mu.
func (l *Log) usable() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.failed != nil:
		return fmt.Errorf("log: unusable after a failed write, reopen it: %w", l.failed)
	}
	return nil
}

// fail records err, from a write that may have stopped part way.
func (l *Log) fail(err error) error {
	l.failed = err
	return err
}

// Save implements Store. Crash ordering: the entries are written first
// (truncation, then one StoreLogs transaction), then the hard state. Either
// order would be safe since the driver sends messages depending on a term or
// vote only after Save returns, which is after both are durable; entries
// first has the advantage that the commit index on disk never points past
// the entries on disk. A crash between the two leaves entries of a term the
// hard state has not reached yet, which only makes this member's log look
// more up to date to itself: it was never acknowledged, and Raft tolerates a
// member losing unacknowledged state.
//
// The hard state is written (one fsync) only when Term or Vote changes; a
// new Commit alone is kept in memory, written along with the next term or
// vote change and on Close. Losing it in a crash is safe: commit is a hint
// that the leader will repeat.
func (l *Log) Save(hs raft.HardState, ents []raft.Entry) error {
	if err := checkBatch(ents); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if len(ents) > 0 && ents[len(ents)-1].Index <= l.comp.meta.Index {
		ents = nil // all compacted already
	}
	if len(ents) > 0 && ents[0].Index <= l.comp.meta.Index {
		ents = ents[l.comp.meta.Index+1-ents[0].Index:]
	}
	if len(ents) > 0 {
		if last := l.lastIndex(); ents[0].Index > last+1 {
			return fmt.Errorf("log: save entries from %d: gap after the last index %d", ents[0].Index, last)
		}
		prev := l.comp.meta.Term
		if ents[0].Index-1 > l.comp.meta.Index {
			t, err := l.storedTerm(ents[0].Index - 1)
			if err != nil {
				return err
			}
			prev = t
		}
		if ents[0].Term < prev {
			return fmt.Errorf("log: save: entry %d has term %d below the previous %d", ents[0].Index, ents[0].Term, prev)
		}
		if err := l.write(ents); err != nil {
			return l.fail(err)
		}
	}
	if hs.IsEmpty() {
		return nil
	}
	if hs.Term != l.saved.Term || hs.Vote != l.saved.Vote {
		if err := fail("save.hardstate"); err != nil {
			return l.fail(err)
		}
		if err := l.stable.setHardState(hs); err != nil {
			return l.fail(err)
		}
		l.saved = hs
	}
	l.hs = hs
	return nil
}

// checkBatch checks that ents are contiguous with non-decreasing terms.
func checkBatch(ents []raft.Entry) error {
	for k := range ents {
		switch {
		case ents[k].Index == 0:
			return errors.New("log: save: entry with index 0")
		case ents[k].Type > raft.EntryConfig:
			return fmt.Errorf("log: save: entry %d has unknown type %d", ents[k].Index, ents[k].Type)
		case uint64(len(ents[k].Data)) >= 1<<32-1:
			return fmt.Errorf("log: save: entry %d of %d bytes: too large", ents[k].Index, len(ents[k].Data))
		case k > 0 && ents[k].Index != ents[k-1].Index+1:
			return fmt.Errorf("log: save: entry %d follows entry %d", ents[k].Index, ents[k-1].Index)
		case k > 0 && ents[k].Term < ents[k-1].Term:
			return fmt.Errorf("log: save: entry %d has term %d below the previous %d", ents[k].Index, ents[k].Term, ents[k-1].Term)
		}
	}
	return nil
}

// write truncates the log's suffix from ents[0].Index if it is there and
// appends ents to the head segment, rolling to a new one if the head is full.
func (l *Log) write(ents []raft.Entry) error {
	idx := ents[0].Index
	if l.touchesFlush(idx) {
		l.awaitFlush()
	}
	l.cache.truncateFrom(idx)
	if err := l.truncate(idx); err != nil {
		return err
	}
	head, err := l.head(idx)
	if err != nil {
		return err
	}
	flushDue, err := head.append(ents, int(min(maxPendingFlush, l.opts.SegmentSize/4)))
	if err != nil {
		return err
	}
	if flushDue {
		select {
		case l.flushWake <- struct{}{}:
		default:
		}
	}
	l.cache.append(ents)
	return nil
}

// truncate removes the stored entries from idx on: whole segments starting
// at or above idx go first, highest first, each removal made durable before
// the next step, so a crash anywhere leaves a prefix of the log; then the
// suffix of the segment that keeps a prefix goes, in one transaction.
func (l *Log) truncate(idx uint64) error {
	for len(l.segs) > 0 && l.segs[len(l.segs)-1].first >= idx {
		if err := fail("truncate.remove"); err != nil {
			return err
		}
		s := l.segs[len(l.segs)-1]
		l.segs = l.segs[:len(l.segs)-1]
		if err := s.unlink(l.opts.NoSync); err != nil {
			return err
		}
		if err := l.retire(s); err != nil {
			return err
		}
	}
	if len(l.segs) == 0 {
		return nil
	}
	if s := l.segs[len(l.segs)-1]; s.last >= idx {
		if err := fail("truncate.delete-range"); err != nil {
			return err
		}
		return s.truncateFrom(idx, l.opts.NoSync)
	}
	return nil
}

// head returns the segment that takes entries from idx: the head, unless it
// is full or sealed, in which case a new segment is started at idx. A sealed
// segment never takes appends again, even when a truncation makes it the
// last one: Clean may be rewriting it.
func (l *Log) head(idx uint64) (*segment, error) {
	n := len(l.segs)
	if n > 0 {
		h := l.segs[n-1]
		if h.last+1 != idx {
			return nil, h.errorf("append at %d after entry %d (bug)", idx, h.last)
		}
		if !h.sealed {
			if h.empty() {
				return h, nil
			}
			full, err := l.full(h)
			if err != nil {
				return nil, err
			}
			if !full {
				return h, nil
			}
		}
	}
	if n > 0 && !l.segs[n-1].sealed {
		if err := l.segs[n-1].seal(l.opts.NoSync); err != nil {
			return nil, err
		}
	}
	s, err := createHead(l.opts.Dir, idx, &l.opts, l.stable.id)
	if err != nil {
		return nil, err
	}
	l.segs = append(l.segs, s)
	return s, nil
}

// Close implements Store: it writes a commit index newer than the one on
// disk and closes the files.
func (l *Log) Close() error {
	l.closing.Store(true)
	l.stopFlusher()
	l.maint.Lock() // wait for a Clean step or an Install to end
	defer l.maint.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	var err error
	if l.failed == nil && l.hs != l.saved {
		err = l.stable.setHardState(l.hs)
	}
	l.closed = true
	return errors.Join(err, l.closeFiles())
}

// closeFiles closes the stable store and the segments, except those a
// reader still holds, which it closes when done.
func (l *Log) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, l.retire(s))
	}
	l.segs = nil
	if err := l.stable.close(); err != nil {
		errs = append(errs, fmt.Errorf("log: close %s: %w", l.stable.path, err))
	}
	return errors.Join(errs...)
}

// lastIndex is the last entry's index, or C if there is none above it.
func (l *Log) lastIndex() uint64 {
	if n := len(l.segs); n > 0 && l.segs[n-1].last > l.comp.meta.Index {
		return l.segs[n-1].last
	}
	return l.comp.meta.Index
}

// segmentFor returns the segment holding entry i.
func (l *Log) segmentFor(i uint64) (*segment, error) {
	k := sort.Search(len(l.segs), func(k int) bool { return l.segs[k].first > i }) - 1
	if k < 0 || i > l.segs[k].last {
		return nil, fmt.Errorf("log: entry %d: %w", i, raft.ErrUnavailable)
	}
	return l.segs[k], nil
}

// entry returns stored entry i, from the cache if it is there.
func (l *Log) entry(i uint64) (raft.Entry, error) {
	if e, ok := l.cache.get(i); ok {
		return e, nil
	}
	s, err := l.segmentFor(i)
	if err != nil {
		return raft.Entry{}, err
	}
	return s.get(i)
}

// storedTerm returns the term of stored entry i, ignoring the compaction point.
func (l *Log) storedTerm(i uint64) (uint64, error) {
	e, err := l.entry(i)
	return e.Term, err
}

// InitialState implements raft.Storage.
func (l *Log) InitialState() (raft.HardState, raft.SnapshotMeta, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usable(); err != nil {
		return raft.HardState{}, raft.SnapshotMeta{}, err
	}
	return l.hs, cloneMeta(l.comp.meta), nil
}

// Entries implements raft.Storage.
func (l *Log) Entries(lo, hi, maxSize uint64) ([]raft.Entry, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usable(); err != nil {
		return nil, err
	}
	if err := l.checkRange(lo, hi); err != nil {
		return nil, err
	}
	if lo == hi {
		return nil, nil
	}
	ents := make([]raft.Entry, 0, min(hi-lo, 256))
	var size uint64
	for i := lo; i < hi; i++ {
		e, err := l.entry(i)
		if err != nil {
			return nil, err
		}
		// The same accounting as raft.MemoryStorage: len(Data)+32 per entry,
		// at least one entry.
		if size += uint64(len(e.Data)) + 32; len(ents) > 0 && size > maxSize {
			break
		}
		ents = append(ents, e)
	}
	return ents, nil
}

func (l *Log) checkRange(lo, hi uint64) error {
	switch last := l.lastIndex(); {
	case lo > hi:
		return fmt.Errorf("log: entries [%d, %d): inverted range", lo, hi)
	case lo <= l.comp.meta.Index:
		return raft.ErrCompacted
	case hi > last+1:
		return fmt.Errorf("log: entries [%d, %d) beyond the last index %d: %w", lo, hi, last, raft.ErrUnavailable)
	}
	return nil
}

// Term implements raft.Storage.
func (l *Log) Term(i uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	switch {
	case i == l.comp.meta.Index:
		return l.comp.meta.Term, nil
	case i < l.comp.meta.Index:
		return 0, raft.ErrCompacted
	case i > l.lastIndex():
		return 0, raft.ErrUnavailable
	}
	return l.storedTerm(i)
}

// FirstIndex implements raft.Storage.
func (l *Log) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	return l.comp.meta.Index + 1, nil
}

// LastIndex implements raft.Storage.
func (l *Log) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	return l.lastIndex(), nil
}

// Snapshot implements raft.Storage: the compaction point and the image at
// it (nil if there is none). Data is shared with the Log: callers must not
// modify it.
func (l *Log) Snapshot() (raft.Snapshot, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usable(); err != nil {
		return raft.Snapshot{}, err
	}
	return raft.Snapshot{Meta: cloneMeta(l.comp.meta), Data: l.image}, nil
}

func cloneMeta(m raft.SnapshotMeta) raft.SnapshotMeta {
	m.Config = m.Config.Clone()
	return m
}
