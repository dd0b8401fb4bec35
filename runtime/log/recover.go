package log

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// installSuffix marks a segment staged by Install: segment-<first>.db.install.
// It means nothing until the compaction record commits the install.
const installSuffix = ".install"

// dirFiles is what a log directory holds, by kind.
type dirFiles struct {
	segments []uint64 // first indexes of segment-*.db, ascending
	journals []uint64 // first indexes of segment-*.journal, ascending
	installs []string // names of staged segments
	images   []string // names of image files
	temps    []string // names of *.tmp files
}

// listDir sorts the files in dir by kind; it changes nothing.
func listDir(dir string) (dirFiles, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return dirFiles{}, fmt.Errorf("log: open %s: %w", dir, err)
	}
	var f dirFiles
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			f.temps = append(f.temps, name)
		case strings.HasSuffix(name, installSuffix):
			if _, ok := parseSegmentName(strings.TrimSuffix(name, installSuffix)); ok {
				f.installs = append(f.installs, name)
			}
		default:
			if first, ok := parseSegmentName(name); ok {
				f.segments = append(f.segments, first)
			} else if first, ok := parseJournalName(name); ok {
				f.journals = append(f.journals, first)
			} else if _, _, ok := parseImageName(name); ok {
				f.images = append(f.images, name)
			}
		}
	}
	slices.Sort(f.segments)
	slices.Sort(f.journals)
	return f, nil
}

// scanDir lists dir and removes leftover temporary files of interrupted
// creations (a segment, a cleaned segment, an image).
func scanDir(dir string, logger *slog.Logger) (dirFiles, error) {
	f, err := listDir(dir)
	if err != nil {
		return f, err
	}
	for _, name := range f.temps {
		logger.Info("log: removing file left by an interrupted write", "file", filepath.Join(dir, name))
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return f, fmt.Errorf("log: open %s: %w", dir, err)
		}
	}
	f.temps = nil
	return f, nil
}

// load reads the stable state, finishes an install that got past its
// commit, removes files no record refers to, loads the image, opens and
// checks the segments, and finishes whatever else a crash interrupted.
func (l *Log) load() error {
	var err error
	if l.hs, err = l.stable.hardState(); err != nil {
		return err
	}
	l.saved = l.hs
	if l.comp, err = l.stable.compaction(); err != nil {
		return err
	}
	if l.comp.install != installDone {
		l.logger.Info("log: finishing an interrupted install", "dir", l.opts.Dir, "compaction", l.comp.meta.Index)
		if err := l.completeInstall(); err != nil {
			return err
		}
	}
	files, err := listDir(l.opts.Dir)
	if err != nil {
		return err
	}
	if l.comp.image.present { // before removing strays: a damaged log keeps all its files
		if l.image, err = readImage(l.opts.Dir, l.stable.id, l.comp.meta, l.comp.image); err != nil {
			return err
		}
	}
	if err := l.removeStrays(files); err != nil {
		return err
	}
	headFirst, err := l.removeStaleJournals(files)
	if err != nil {
		return err
	}
	for _, first := range files.segments {
		if first == headFirst {
			continue
		}
		s, err := openSegment(filepath.Join(l.opts.Dir, segmentName(first)), first, &l.opts, l.stable.id, l.stable.path)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}
	if headFirst != 0 {
		s, err := rebuildHead(l.opts.Dir, headFirst, &l.opts, l.stable.id)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}
	if err := l.resolveOverlaps(); err != nil {
		return err
	}
	if err := l.checkSegments(); err != nil {
		return err
	}
	if err := l.reconcile(); err != nil {
		return err
	}
	for k := 0; k+1 < len(l.segs); k++ {
		l.segs[k].sealed = true
	}
	return l.prepareHead()
}

// removeStaleJournals deletes the journals that belong to no head and
// returns the first index of the head's journal, 0 if there is none. Only
// the journal at or above every segment's first index can be the head's: a
// lower one survived the sealing of its segment (whose bolt file was synced
// before the journal was removed) in a crash that lost the removal.
func (l *Log) removeStaleJournals(files dirFiles) (uint64, error) {
	n := len(files.journals)
	if n == 0 {
		return 0, nil
	}
	head := files.journals[n-1]
	stale := files.journals[:n-1]
	if k := len(files.segments); k > 0 && head < files.segments[k-1] {
		stale, head = files.journals, 0
	}
	for _, first := range stale {
		path := filepath.Join(l.opts.Dir, journalName(first))
		l.logger.Info("log: removing the journal of a sealed segment", "file", path)
		if err := os.Remove(path); err != nil {
			return 0, fmt.Errorf("log: open %s: %w", l.opts.Dir, err)
		}
	}
	if head != 0 && !slices.Contains(files.segments, head) {
		l.logger.Info("log: recreating a head segment from its journal", "file", filepath.Join(l.opts.Dir, journalName(head)))
	}
	return head, nil
}

// prepareHead makes the last segment ready to take appends: a head without
// a journal is sealed if it holds entries (its file was synced by a log
// predating journals, or as a sealed segment a truncation left last) and
// given a journal if it is empty (a crash came between its creation and
// its journal's).
func (l *Log) prepareHead() error {
	n := len(l.segs)
	if n == 0 {
		return nil
	}
	h := l.segs[n-1]
	switch {
	case h.journal != nil || h.sealed:
		return nil
	case h.cleaned || !h.empty():
		h.sealed = true
		return nil
	}
	j, err := createJournal(l.opts.Dir, h.first, l.stable.id, &l.opts)
	if err != nil {
		return err
	}
	h.journal = j
	return nil
}

// completeInstall finishes an Install past its commit, in two phases, each
// recorded in the compaction record once done, so that running it again
// after a crash at any step ends the same way: delete the old segments and
// images, then rename the staged segments into place. Install runs it
// after its commit; Open runs it when the record says an install is not
// done.
func (l *Log) completeInstall() error {
	dir := l.opts.Dir
	if l.comp.install == installRemoveOld {
		files, err := listDir(dir)
		if err != nil {
			return err
		}
		keep := ""
		if l.comp.image.present {
			keep = imageName(l.comp.meta.Index, l.comp.meta.Term)
		}
		var old []string
		for _, first := range slices.Backward(files.segments) {
			old = append(old, segmentName(first))
		}
		for _, first := range files.journals {
			old = append(old, journalName(first))
		}
		for _, name := range files.images {
			if name != keep {
				old = append(old, name)
			}
		}
		for _, name := range old {
			if err := fail("install.remove"); err != nil {
				return err
			}
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("log: install: remove %s: %w", filepath.Join(dir, name), err)
			}
		}
		if err := syncDir(dir, l.opts.NoSync); err != nil {
			return fmt.Errorf("log: install: sync %s: %w", dir, err)
		}
		if err := l.setInstallPhase(installPromote, "install.phase2"); err != nil {
			return err
		}
	}
	if l.comp.install == installPromote {
		files, err := listDir(dir)
		if err != nil {
			return err
		}
		for _, name := range files.installs {
			if err := fail("install.promote"); err != nil {
				return err
			}
			from := filepath.Join(dir, name)
			if err := os.Rename(from, strings.TrimSuffix(from, installSuffix)); err != nil {
				return fmt.Errorf("log: install: rename %s: %w", from, err)
			}
		}
		if err := syncDir(dir, l.opts.NoSync); err != nil {
			return fmt.Errorf("log: install: sync %s: %w", dir, err)
		}
		if err := l.setInstallPhase(installDone, "install.done"); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) setInstallPhase(p installPhase, failName string) error {
	if err := fail(failName); err != nil {
		return err
	}
	c := l.comp
	c.install = p
	if err := l.stable.setCompaction(c); err != nil {
		return err
	}
	l.comp = c
	return nil
}

// removeStrays deletes the files no record refers to: segments staged by
// an install that never committed, and images other than the compaction
// record's (older ones a crash kept, newer ones never committed).
func (l *Log) removeStrays(files dirFiles) error {
	keep := ""
	if l.comp.image.present {
		keep = imageName(l.comp.meta.Index, l.comp.meta.Term)
	}
	var stray []string
	for _, name := range files.images {
		if name != keep {
			stray = append(stray, name)
		}
	}
	stray = append(stray, files.installs...) // the install is done: these are from one that never committed
	for _, name := range stray {
		path := filepath.Join(l.opts.Dir, name)
		l.logger.Info("log: removing a file no compaction point refers to", "file", path, "compaction", l.comp.meta.Index)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("log: open %s: %w", l.opts.Dir, err)
		}
	}
	if len(stray) > 0 {
		if err := syncDir(l.opts.Dir, l.opts.NoSync); err != nil {
			return fmt.Errorf("log: open %s: sync: %w", l.opts.Dir, err)
		}
	}
	return nil
}

// resolveOverlaps removes the segments a crash during a merge left behind.
// A merge writes one cleaned segment covering several adjacent ones, renames
// it over the first of them, and only then deletes the others; a crash in
// between leaves those others inside the new segment's range, wholly, and
// below the compaction point. They are redundant (every live entry they hold
// was copied first) and are removed. Any other overlap is damage.
func (l *Log) resolveOverlaps() error {
	c := l.comp.meta.Index
	for k := 0; k+1 < len(l.segs); {
		s, next := l.segs[k], l.segs[k+1]
		if next.first > s.last {
			k++
			continue
		}
		if !s.cleaned || s.last > c || next.empty() || next.last > s.last {
			return next.errorf("%w: overlaps %s, which covers [%d, %d]", ErrCorrupt, s.path, s.first, s.last)
		}
		if err := fail("clean.remove"); err != nil {
			return err
		}
		l.logger.Info("log: removing a segment an interrupted merge left behind", "segment", next.path, "merged into", s.path)
		l.segs = slices.Delete(l.segs, k+1, k+2)
		if err := errors.Join(next.unlink(l.opts.NoSync), next.close()); err != nil {
			return err
		}
	}
	return nil
}

// checkSegments verifies that the segments fit together: each starts where
// the previous one ends, only the head may be an empty plain segment,
// cleaned segments lie at or below the compaction point, and terms never go
// down.
func (l *Log) checkSegments() error {
	var prevTerm uint64
	for k, s := range l.segs {
		if k > 0 && s.first != l.segs[k-1].last+1 {
			return s.errorf("%w: starts at %d but the previous segment %s ends at %d", ErrCorrupt, s.first, l.segs[k-1].path, l.segs[k-1].last)
		}
		if s.empty() {
			if k != len(l.segs)-1 {
				return s.errorf("%w: empty segment before the head", ErrCorrupt)
			}
			continue
		}
		if s.cleaned && s.last > l.comp.meta.Index {
			return s.errorf("%w: cleaned segment covers up to %d, above the compaction point %d", ErrCorrupt, s.last, l.comp.meta.Index)
		}
		lo, hi, ok := s.bounds()
		if !ok {
			continue
		}
		first, err := s.get(lo)
		if err != nil {
			return err
		}
		last, err := s.get(hi)
		if err != nil {
			return err
		}
		if last.Term < first.Term {
			return s.errorf("%w: terms go down (%d to %d)", ErrCorrupt, first.Term, last.Term)
		}
		if first.Term < prevTerm {
			return s.errorf("%w: terms go down (%d at the end of the previous segment %s, %d here)", ErrCorrupt, prevTerm, l.segs[k-1].path, first.Term)
		}
		prevTerm = last.Term
	}
	return nil
}

// reconcile makes the segments agree with the compaction point C.
//
// When the log keeps entries at or below C (Compact, Install), segments
// wholly below the lowest kept index are removed, and the rest must cover
// from that index through C, with entry C, if it is still stored, of C's
// term.
//
// When it keeps none (SetCompaction): if the log does not hold entry C with
// term meta.Term, every segment is removed, highest first (a crash leaves a
// prefix, which the next reconcile removes too); otherwise the segments
// wholly at or below C are removed, lowest first (a crash leaves a suffix
// still covering C+1 on). Open and SetCompaction both end with it, so a
// compaction interrupted after its point was written is finished by the next
// Open.
func (l *Log) reconcile() error {
	if len(l.segs) == 0 {
		return nil
	}
	c := l.comp.meta.Index
	if l.comp.retains() {
		for len(l.segs) > 0 && l.segs[0].last < l.comp.floor {
			if err := l.removeSegment(0); err != nil {
				return err
			}
		}
		if len(l.segs) == 0 {
			return fmt.Errorf("log: %s: %w: no segment holds the entries from %d kept at the compaction point %d", l.opts.Dir, ErrCorrupt, l.comp.floor, c)
		}
		if s := l.segs[0]; s.first > l.comp.floor {
			return s.errorf("%w: starts at %d, above %d, the lowest index kept: a segment is missing", ErrCorrupt, s.first, l.comp.floor)
		}
		if s := l.segs[len(l.segs)-1]; s.last < c {
			return s.errorf("%w: the log ends at %d, below the compaction point %d", ErrCorrupt, s.last, c)
		}
		if s, err := l.segmentFor(c); err == nil && s.holds(c) {
			e, err := s.get(c)
			if err != nil {
				return err
			}
			if e.Term != l.comp.meta.Term {
				return s.errorf("%w: entry %d has term %d, the compaction point says %d", ErrCorrupt, c, e.Term, l.comp.meta.Term)
			}
		}
		l.cache.dropBelow(c + 1)
		return nil
	}
	head := l.segs[len(l.segs)-1]
	discard := head.last <= c
	if !discard && c >= l.segs[0].first {
		t, err := l.storedTerm(c)
		if err != nil {
			return err
		}
		discard = t != l.comp.meta.Term
	}
	if !discard && l.segs[0].first > c+1 {
		return l.segs[0].errorf("%w: starts at %d, leaving a gap after the compaction point %d", ErrCorrupt, l.segs[0].first, c)
	}
	if discard {
		l.cache.reset()
		for len(l.segs) > 0 {
			if err := l.removeSegment(len(l.segs) - 1); err != nil {
				return err
			}
		}
		return nil
	}
	l.cache.dropBelow(c + 1)
	for l.segs[0].last <= c {
		if err := l.removeSegment(0); err != nil {
			return err
		}
	}
	return nil
}
