package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SegmentUsage describes one segment file for an operator.
type SegmentUsage struct {
	// File is the segment's path.
	File string
	// First and Last bound the index range the segment covers. A plain
	// segment holds all of it (none if Last < First, an empty head); a
	// cleaned one holds only the entries that were live when it was written.
	First, Last uint64
	// Cleaned marks a segment written by Clean or Install.
	Cleaned bool
	// Sealed segments take no more appends; only they are cleaned.
	Sealed bool
	// Entries is the number of entries the segment holds.
	Entries int64
	// Live is how many of them the live set reports live (entries above the
	// compaction point count as live); zero unless Usage.LiveCounted.
	Live int64
	// Bytes is the size on disk of the segment's files: its bolt file and,
	// for the head, its journal.
	Bytes int64
}

// Usage is the operator's view of a store: where its space goes and how
// much of it is garbage.
type Usage struct {
	// Dir is the log's directory ("" for Memory).
	Dir string
	// CompactionIndex and CompactionTerm are the compaction point C.
	CompactionIndex, CompactionTerm uint64
	// KeptFrom is the lowest index of the entries at or below C that the
	// store keeps for Compacted (C+1 when it keeps none; for Memory, the
	// lowest index it still holds).
	KeptFrom uint64
	// FirstIndex and LastIndex bound the core's view of the log.
	FirstIndex, LastIndex uint64
	// Segments lists the segment files, ascending (none for Memory).
	Segments []SegmentUsage
	// Image is the path of the image file ("" if there is none or for
	// Memory); ImageBytes is its size (for Memory: the image's).
	Image      string
	ImageBytes int64
	// StableBytes is the size of stable.db.
	StableBytes int64
	// Entries and Live total the segments' (for Memory: every stored
	// entry's).
	Entries, Live int64
	// LiveCounted reports whether Usage was given a live set.
	LiveCounted bool
	// Bytes totals the space used: segments, image and stable.db (for
	// Memory: the entries' Data and the image).
	Bytes int64
}

// Usage implements Store. It copies the segment list under the read lock and
// does the rest — file sizes, asking live — without it.
func (l *Log) Usage(live func(index uint64) bool) (Usage, error) {
	l.mu.Lock() // for writing: hold changes the reference counts
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return Usage{}, err
	}
	u := Usage{
		Dir:             l.opts.Dir,
		CompactionIndex: l.comp.meta.Index,
		CompactionTerm:  l.comp.meta.Term,
		KeptFrom:        l.comp.floor,
		FirstIndex:      l.comp.meta.Index + 1,
		LastIndex:       l.lastIndex(),
		LiveCounted:     live != nil,
	}
	if l.comp.image.present {
		u.Image = filepath.Join(l.opts.Dir, imageName(l.comp.meta.Index, l.comp.meta.Term))
	}
	stablePath := l.stable.path
	spans := make([]span, len(l.segs))
	segs := make([]*segment, len(l.segs))
	journals := make([]string, len(l.segs))
	for k, s := range l.segs {
		spans[k], segs[k] = span{seg: s, lo: s.first, hi: s.last}, s
		if s.journal != nil {
			journals[k] = s.journal.path
		}
		u.Segments = append(u.Segments, SegmentUsage{File: s.path, First: s.first, Last: s.last, Cleaned: s.cleaned, Sealed: s.sealed})
	}
	hold(segs) // keep the files (and their paths) from being reused while we stat them
	l.mu.Unlock()
	defer l.release(segs)

	var errs []error
	size := func(path string) int64 {
		st, err := os.Stat(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) { // a segment Clean replaced meanwhile
			errs = append(errs, err)
		}
		if err != nil {
			return 0
		}
		return st.Size()
	}
	c, floor := u.CompactionIndex, u.KeptFrom
	for k, sp := range spans {
		su := &u.Segments[k]
		su.Bytes = size(su.File)
		if journals[k] != "" {
			su.Bytes += size(journals[k])
		}
		sp.seg.each(sp.lo, sp.hi, func(i uint64) bool {
			su.Entries++
			if live != nil && i >= floor && (i > c || live(i)) {
				su.Live++
			}
			return true
		})
		u.Entries += su.Entries
		u.Live += su.Live
		u.Bytes += su.Bytes
	}
	if u.Image != "" {
		u.ImageBytes = size(u.Image)
	}
	u.StableBytes = size(stablePath)
	u.Bytes += u.ImageBytes + u.StableBytes
	if err := errors.Join(errs...); err != nil {
		return u, fmt.Errorf("log: usage: %w", err)
	}
	return u, nil
}

// Inspect reports the Usage of the log in dir, without a live set, for an
// operator (`copycat log inspect`). It opens the log as Open does — so it
// finishes a write a crash interrupted, as the next start would — and
// closes it; a directory another process holds open is refused (after
// bbolt's one-second lock timeout), as is one that holds no log.
func Inspect(dir string) (Usage, error) {
	if _, err := os.Stat(filepath.Join(dir, stableFile)); err != nil {
		return Usage{}, fmt.Errorf("log: inspect %s: not a log directory: %w", dir, err)
	}
	l, err := Open(Options{Dir: dir})
	if err != nil {
		return Usage{}, fmt.Errorf("log: inspect %s: %w", dir, err)
	}
	u, err := l.Usage(nil)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return u, err
}
