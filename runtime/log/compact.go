package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Compact implements Store. Crash ordering: the image is written first
// (temporary file, fsync, rename, directory fsync), then the compaction
// record naming it (one fsync: the commit), then the previous image is
// deleted. A crash before the commit leaves the old point with a stray new
// image, after it the new point with a stray old image; Open deletes the
// stray. Nothing else changes on disk: the entries at or below C stay where
// they are until Clean.
//
// If C lies in the head segment and the head is past a quarter of
// Options.SegmentSize, the head is sealed: the next Save starts a new
// segment, and the old head becomes cleanable once C passes its end. The
// seal lasts: it deletes the head's journal, and Open seals a last segment
// that has none.
func (l *Log) Compact(snap raft.Snapshot) error {
	l.maint.Lock()
	defer l.maint.Unlock()
	meta := snap.Meta
	l.mu.RLock()
	err := l.checkCompact(meta)
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	var ref imageRef
	if len(snap.Data) > 0 {
		// Before the commit the log is as it was: an error leaves at most a
		// stray image, which Open deletes or a retry overwrites.
		if ref, err = writeImage(l.opts.Dir, l.stable.id, meta, snap.Data, l.opts.NoSync); err != nil {
			return err
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.awaitFlush()                               // sealing the head below must not wait in the middle
	if err := l.checkCompact(meta); err != nil { // a Save may have truncated entry C meanwhile
		return err
	}
	old := l.comp
	c := compaction{meta: cloneMeta(meta), floor: old.floor, image: ref}
	if err := fail("compact.meta"); err != nil {
		return l.fail(err)
	}
	if err := l.stable.setCompaction(c); err != nil {
		return l.fail(err)
	}
	l.comp = c
	l.image = nil
	if ref.present {
		l.image = snap.Data
	}
	l.cache.dropBelow(meta.Index + 1)
	if err := l.sealHead(); err != nil {
		return l.fail(err)
	}
	if err := l.removeImage(old); err != nil {
		return l.fail(err)
	}
	return nil
}

// checkCompact checks that the log can take meta as its compaction point.
// Callers hold mu.
func (l *Log) checkCompact(meta raft.SnapshotMeta) error {
	if err := l.usable(); err != nil {
		return err
	}
	c := meta.Index
	if c <= l.comp.meta.Index {
		return fmt.Errorf("log: compact at %d: not above the current compaction point %d: %w", c, l.comp.meta.Index, raft.ErrCompacted)
	}
	if last := l.lastIndex(); c > last {
		return fmt.Errorf("log: compact at %d: beyond the last entry %d: %w", c, last, raft.ErrUnavailable)
	}
	t, err := l.storedTerm(c)
	if err != nil {
		return err
	}
	if t != meta.Term {
		return fmt.Errorf("log: compact at %d: the entry there has term %d, not %d", c, t, meta.Term)
	}
	return nil
}

// sealHead seals the head if the compaction point lies in it and it is
// large enough to be worth cleaning. Callers hold mu.
func (l *Log) sealHead() error {
	n := len(l.segs)
	if n == 0 {
		return nil
	}
	h := l.segs[n-1]
	if h.sealed || h.empty() || h.first > l.comp.meta.Index {
		return nil
	}
	size, err := h.size()
	if err != nil {
		l.logger.Warn("log: not sealing the head segment", "err", err)
		return nil
	}
	if size > l.opts.SegmentSize/4 {
		return h.seal(l.opts.NoSync)
	}
	return nil
}

// removeImage deletes the image of the compaction state old, if it had one,
// durably. Callers hold mu.
func (l *Log) removeImage(old compaction) error {
	if !old.image.present {
		return nil
	}
	if err := fail("compact.remove-image"); err != nil {
		return err
	}
	path := filepath.Join(l.opts.Dir, imageName(old.meta.Index, old.meta.Term))
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("log: remove image %s: %w", path, err)
	}
	if err := syncDir(l.opts.Dir, l.opts.NoSync); err != nil {
		return fmt.Errorf("log: remove image %s: sync directory: %w", path, err)
	}
	return nil
}

// SetCompaction implements Store. The compaction point is written to
// stable.db first (one fsync); only then are segments removed (see
// reconcile), so a crash in between leaves segments that the next Open
// removes; the image, if there was one, is deleted last. Segments that
// straddle C keep their entries at or below C on disk, unreachable: the
// record says no entry at or below C is kept.
//
// Deprecated: use Compact and Install (see Store).
func (l *Log) SetCompaction(meta raft.SnapshotMeta) error {
	l.maint.Lock()
	defer l.maint.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.awaitFlush()
	if err := l.usable(); err != nil {
		return err
	}
	if meta.Index <= l.comp.meta.Index {
		return fmt.Errorf("log: compaction at %d is not above the current %d: %w", meta.Index, l.comp.meta.Index, raft.ErrCompacted)
	}
	if err := fail("compact.meta"); err != nil {
		return l.fail(err)
	}
	old := l.comp
	c := compaction{meta: cloneMeta(meta), floor: meta.Index + 1}
	if err := l.stable.setCompaction(c); err != nil {
		return l.fail(err)
	}
	l.comp, l.image = c, nil
	if err := l.reconcile(); err != nil {
		return l.fail(err)
	}
	if err := l.removeImage(old); err != nil {
		return l.fail(err)
	}
	return nil
}

// removeSegment deletes segment k, durably. Callers hold mu.
func (l *Log) removeSegment(k int) error {
	if err := fail("compact.remove"); err != nil {
		return err
	}
	s := l.segs[k]
	l.logger.Info("log: removing segment at or below the compaction point", "segment", s.path, "compaction", l.comp.meta.Index)
	l.segs = slices.Delete(l.segs, k, k+1)
	if err := s.unlink(l.opts.NoSync); err != nil {
		return err
	}
	return l.retire(s)
}

// retire closes a segment that has left the log, or, if a reader still
// holds it, leaves that to the last reader. Callers hold mu.
func (l *Log) retire(s *segment) error {
	if s.refs > 0 {
		s.retired = true
		return nil
	}
	return s.close()
}

// hold takes a reference on each of segs, which keeps them open until
// release even if they leave the log. Callers hold mu for writing.
func hold(segs []*segment) {
	for _, s := range segs {
		s.refs++
	}
}

// release drops the references hold took, closing the segments that left
// the log meanwhile.
func (l *Log) release(segs []*segment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range segs {
		if s.refs--; s.refs == 0 && s.retired {
			if err := s.close(); err != nil {
				l.logger.Warn("log: closing a segment that left the log", "err", err)
			}
		}
	}
}
