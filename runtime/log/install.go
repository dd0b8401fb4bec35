package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/copycat-go/copycat/runtime/raft"
)

// installCheck validates the entries of an Install stream as they arrive.
type installCheck struct {
	meta raft.SnapshotMeta
	prev raft.Entry
}

func (c *installCheck) next(e raft.Entry) error {
	switch {
	case e.Index == 0:
		return fmt.Errorf("log: install at %d: entry with index 0", c.meta.Index)
	case e.Index > c.meta.Index:
		return fmt.Errorf("log: install at %d: entry %d lies above the snapshot", c.meta.Index, e.Index)
	case c.prev.Index != 0 && e.Index <= c.prev.Index:
		return fmt.Errorf("log: install at %d: entry %d follows entry %d", c.meta.Index, e.Index, c.prev.Index)
	case e.Term < c.prev.Term:
		return fmt.Errorf("log: install at %d: entry %d has term %d below the previous %d", c.meta.Index, e.Index, e.Term, c.prev.Term)
	case e.Term > c.meta.Term:
		return fmt.Errorf("log: install at %d: entry %d has term %d above the snapshot's %d", c.meta.Index, e.Index, e.Term, c.meta.Term)
	case e.Index == c.meta.Index && e.Term != c.meta.Term:
		return fmt.Errorf("log: install at %d: entry %d has term %d, the snapshot says %d", c.meta.Index, e.Index, e.Term, c.meta.Term)
	}
	c.prev = e
	return nil
}

// Install implements Store. Crash ordering:
//
//  1. The entries are written as they arrive into cleaned segments under
//     staging names (segment-<first>.db.install, a new file each time the
//     current one passes Options.SegmentSize), each synced once full, and
//     the image is written (see Compact); then the directory is synced.
//  2. The compaction record is written with the new point, its image and
//     "install phase 1": the commit. A crash before it leaves the old log
//     and stray staged files and image, which Open deletes.
//  3. Phase 1: every old segment and image is deleted, the directory
//     synced, and the record set to phase 2.
//  4. Phase 2: every staged segment is renamed into place, the directory
//     synced, and the record set to done.
//
// Open repeats the phase the record names, so a crash anywhere after the
// commit ends in the new log. The hard state is not touched.
func (l *Log) Install(snap raft.Snapshot, next func() (e raft.Entry, ok bool, err error)) error {
	l.maint.Lock()
	defer l.maint.Unlock()
	meta := snap.Meta
	l.mu.RLock()
	err := l.usable()
	cur := l.comp.meta.Index
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	if meta.Index <= cur {
		return fmt.Errorf("log: install at %d: not above the current compaction point %d: %w", meta.Index, cur, raft.ErrCompacted)
	}
	if err := l.removeStaged(); err != nil {
		return err
	}
	// Until the commit the log is as it was: an error leaves at most stray
	// staged files and image, which the next Install or Open deletes.
	staged, floor, err := l.stage(meta, next)
	if err != nil {
		return err
	}
	closeStaged := func() {
		for _, s := range staged {
			s.close()
		}
	}
	var ref imageRef
	if len(snap.Data) > 0 {
		if ref, err = writeImage(l.opts.Dir, l.stable.id, meta, snap.Data, l.opts.NoSync); err != nil {
			closeStaged()
			return err
		}
	}
	if err := syncDir(l.opts.Dir, l.opts.NoSync); err != nil {
		closeStaged()
		return fmt.Errorf("log: install at %d: sync %s: %w", meta.Index, l.opts.Dir, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.awaitFlush() // the old head is retired below
	if err := l.usable(); err != nil {
		closeStaged()
		return err
	}
	if err := fail("install.commit"); err != nil {
		closeStaged()
		return err
	}
	c := compaction{meta: cloneMeta(meta), floor: floor, image: ref, install: installRemoveOld}
	if err := l.stable.setCompaction(c); err != nil {
		closeStaged()
		return l.fail(err)
	}
	l.comp = c
	l.image = nil
	if ref.present {
		l.image = snap.Data
	}
	old := l.segs
	l.segs = staged
	l.cache.reset()
	var errs []error
	for _, s := range old {
		errs = append(errs, l.retire(s))
	}
	errs = append(errs, l.completeInstall())
	for _, s := range staged {
		s.path = strings.TrimSuffix(s.path, installSuffix)
	}
	if err := errors.Join(errs...); err != nil {
		return l.fail(err)
	}
	return nil
}

// stage writes the entries next delivers into cleaned segments under their
// staging names and returns them, open, with the lowest index they cover
// (meta.Index+1 if next delivers nothing). Each staged segment covers from
// the end of the previous one; the last covers through meta.Index. On error
// the files stay, closed.
func (l *Log) stage(meta raft.SnapshotMeta, next func() (raft.Entry, bool, error)) (staged []*segment, floor uint64, err error) {
	var w *cleanedWriter
	defer func() {
		if err == nil {
			return
		}
		if w != nil {
			w.seg.close()
		}
		for _, s := range staged {
			s.close()
		}
		staged = nil
	}()
	check := installCheck{meta: meta}
	full := false
	for {
		if l.closing.Load() {
			return nil, 0, ErrClosed
		}
		e, ok, err := next()
		if err != nil {
			return nil, 0, fmt.Errorf("log: install at %d: reading the entries: %w", meta.Index, err)
		}
		if !ok {
			break
		}
		if err := check.next(e); err != nil {
			return nil, 0, err
		}
		if w != nil && full {
			s, err := w.finish(e.Index - 1)
			if err != nil {
				return nil, 0, err
			}
			staged, w = append(staged, s), nil
		}
		if w == nil {
			first := e.Index
			if n := len(staged); n > 0 {
				first = staged[n-1].last + 1
			}
			if err := fail("install.stage"); err != nil {
				return nil, 0, err
			}
			if w, err = createCleaned(filepath.Join(l.opts.Dir, segmentName(first)+installSuffix), first, &l.opts, l.stable.id, l.opts.SegmentSize/8); err != nil {
				return nil, 0, err
			}
			full = false
		}
		if err := w.add(e); err != nil {
			return nil, 0, err
		}
		// A few transactions per segment (createCleaned above), so the file
		// size is checked often enough to roll near SegmentSize.
		if len(w.batch) == 0 { // just written: see whether the file is full
			size, err := w.seg.size()
			if err != nil {
				return nil, 0, err
			}
			full = size >= l.opts.SegmentSize
		}
	}
	if w != nil {
		s, err := w.finish(meta.Index)
		if err != nil {
			return nil, 0, err
		}
		staged, w = append(staged, s), nil
	}
	if len(staged) == 0 {
		return nil, meta.Index + 1, nil
	}
	return staged, staged[0].first, nil
}

// removeStaged deletes the staged segments a failed Install left.
func (l *Log) removeStaged() error {
	files, err := listDir(l.opts.Dir)
	if err != nil {
		return err
	}
	for _, name := range files.installs {
		if err := os.Remove(filepath.Join(l.opts.Dir, name)); err != nil {
			return fmt.Errorf("log: install: remove %s: %w", filepath.Join(l.opts.Dir, name), err)
		}
	}
	return nil
}
