package log

import (
	"errors"
	"fmt"
	"os"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Entries are written to a new cleaned segment in transactions of at most
// this many entries or bytes of Data, so that neither Clean nor Install
// holds much of what it copies in memory.
const (
	writeBatchEntries = 1024
	writeBatchBytes   = 4 << 20
)

// cleanedWriter writes a new cleaned segment: Clean under a temporary name,
// Install under a staging name. Either way the file means nothing until the
// caller's commit step (a rename, a compaction record), so its transactions
// skip fsync and finish syncs the file once.
type cleanedWriter struct {
	seg      *segment
	o        *Options
	batch    []raft.Entry
	bytes    int
	maxBytes int    // of Data per transaction
	added    uint64 // index of the last entry added, first-1 before any
}

// createCleaned starts a cleaned segment covering indexes from first on in
// a new file at path, replacing any file left there. Entries are written in
// transactions of about batchBytes of Data (at most writeBatchBytes).
func createCleaned(path string, first uint64, o *Options, logID []byte, batchBytes int64) (*cleanedWriter, error) {
	s := &segment{path: path, first: first, last: first - 1, cleaned: true, sealed: true}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, s.errorf("create: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: o.BoltOptions, NoSync: true})
	if err != nil {
		return nil, s.errorf("create: %w", err)
	}
	s.store = store
	w := &cleanedWriter{seg: s, o: o, added: first - 1, maxBytes: int(max(1, min(writeBatchBytes, batchBytes)))}
	for _, r := range [][2][]byte{{keyFormat, []byte(cleanedFormat)}, {keyLogID, logID}, {keyFirst, uint64Bytes(first)}} {
		if err := store.Set(r[0], r[1]); err != nil {
			w.abort()
			return nil, s.errorf("create: %w", err)
		}
	}
	return w, nil
}

// add queues e, whose index must be above every index added before, and
// writes the queue once it is large enough.
func (w *cleanedWriter) add(e raft.Entry) error {
	if e.Index <= w.added {
		return fmt.Errorf("log: entry %d after entry %d (bug)", e.Index, w.added)
	}
	w.added = e.Index
	w.batch = append(w.batch, e)
	w.bytes += len(e.Data)
	if len(w.batch) >= writeBatchEntries || w.bytes >= w.maxBytes {
		return w.flush()
	}
	return nil
}

// flush writes the queued entries in one transaction.
func (w *cleanedWriter) flush() error {
	if len(w.batch) == 0 {
		return nil
	}
	if err := w.seg.put(w.batch); err != nil {
		return err
	}
	for _, e := range w.batch {
		if n := len(w.seg.runs); n > 0 && w.seg.runs[n-1].hi+1 == e.Index {
			w.seg.runs[n-1].hi = e.Index
		} else {
			w.seg.runs = append(w.seg.runs, run{lo: e.Index, hi: e.Index})
		}
	}
	clear(w.batch) // release Data
	w.batch, w.bytes = w.batch[:0], 0
	return nil
}

// finish writes what is queued and the segment's range, which ends at last,
// syncs the file, and returns the segment, open.
func (w *cleanedWriter) finish(last uint64) (*segment, error) {
	s := w.seg
	if err := w.flush(); err != nil {
		return nil, err
	}
	if last < w.added || last < s.first {
		return nil, s.errorf("range ends at %d before entry %d (bug)", last, w.added)
	}
	if err := s.store.Set(keyRange, encodeRange(s.first, last)); err != nil {
		return nil, s.errorf("write range: %w", err)
	}
	s.last, s.stored = last, last
	if !w.o.NoSync {
		if err := s.store.Sync(); err != nil {
			return nil, s.errorf("sync: %w", err)
		}
	}
	return s, nil
}

// abort closes and deletes the unfinished file.
func (w *cleanedWriter) abort() {
	w.seg.store.Close()
	os.Remove(w.seg.path)
}
