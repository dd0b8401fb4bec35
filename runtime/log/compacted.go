package log

import "github.com/copycat-go/copycat/runtime/raft"

// compactedBatch bounds how many entries Compacted reads ahead of fn.
const compactedBatch = 256

// span is the part [lo, hi] of a segment a reader outside mu looks at,
// with bounds read under mu (a plain head's last index moves with Save).
type span struct {
	seg    *segment
	lo, hi uint64
}

// Compacted implements Store. It takes a reference on the segments holding
// entries at or below the compaction point, so that they stay open even if
// a Clean, an Install or a Close takes them out of the log meanwhile, and
// reads them in small batches, each entry in its own read transaction: fn
// runs with no lock and no bolt transaction held, so a slow fn holds up
// neither Save nor the growth of the head's file.
func (l *Log) Compacted(fn func(raft.Entry) error) error {
	l.mu.Lock()    // for writing: hold changes the reference counts
	l.awaitFlush() // before choosing segments: the head may need a flush below
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return err
	}
	c, floor := l.comp.meta.Index, l.comp.floor
	var spans []span
	var segs []*segment
	if l.comp.retains() {
		for _, s := range l.segs {
			if s.first > c {
				break
			}
			if s.last < floor {
				continue
			}
			hi := min(s.last, c)
			if hi > s.stored { // the head's pending entries: into bolt, where fn can read them unlocked
				if err := s.flush(); err != nil {
					l.mu.Unlock()
					return err
				}
			}
			spans = append(spans, span{seg: s, lo: max(s.first, floor), hi: hi})
			segs = append(segs, s)
		}
	}
	hold(segs)
	l.mu.Unlock()
	defer l.release(segs)

	batch := make([]raft.Entry, 0, compactedBatch)
	flush := func() error {
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		clear(batch)
		batch = batch[:0]
		return nil
	}
	for _, sp := range spans {
		var err error
		sp.seg.each(sp.lo, sp.hi, func(i uint64) bool {
			if l.closing.Load() {
				err = ErrClosed
				return false
			}
			var e raft.Entry
			if e, err = sp.seg.getStored(i); err != nil {
				return false
			}
			if batch = append(batch, e); len(batch) == compactedBatch {
				err = flush()
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	return flush()
}
