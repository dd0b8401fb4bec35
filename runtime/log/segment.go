package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/copycat-go/copycat/runtime/raft"
)

const (
	// segmentFormat marks a plain segment: contiguous entries, appended to
	// while it is the head.
	segmentFormat = "copycat log segment v1"
	// cleanedFormat marks a cleaned segment, written once by Clean or
	// Install: some of the indexes of the range its keyRange record names.
	// A different format, rather than a flag, so that code predating
	// cleaning refuses the file instead of misreading its holes as damage.
	cleanedFormat = "copycat log cleaned segment v1"
)

var segmentFormats = []string{segmentFormat, cleanedFormat}

// run is a range [lo, hi] of consecutive indexes.
type run struct{ lo, hi uint64 }

// segment is one BoltStore file covering the index range [first, last].
// A plain segment holds every index of it (none when last == first-1); a
// cleaned one holds the indexes its runs list, all at or below the
// compaction point. The file name carries first, and so does its keyFirst
// record, so a renamed or copied file is caught; a cleaned segment also
// records its range, so Open can tell its holes from lost files.
//
// The fields are guarded by Log.mu, except that path, first, cleaned, runs
// and store never change once the segment is in the log, nor does last once
// it is sealed and wholly at or below the compaction point (truncation
// happens only above it): Clean and Compacted read those without the lock.
type segment struct {
	path    string
	first   uint64
	last    uint64
	cleaned bool
	runs    []run // cleaned segments: the indexes held
	// sealed segments take no more appends: every segment but the head,
	// and the head once Compact seals it. Only sealed segments are cleaned.
	sealed bool
	store  *raftboltdb.BoltStore
	// journal is the head's journal (see journal.go), nil for every other
	// segment. A head's entries are durable in the journal first; pending
	// holds those after stored, not yet written to the bolt file by the
	// Log's flusher.
	journal      *journal
	pending      []raft.Entry
	pendingBytes int
	stored       uint64 // the last index in the bolt file
	// fileBytes is a head's bolt file size as of its last write, so that
	// deciding whether to roll costs no stat per Save.
	fileBytes int64
	// flushing is set while the flusher writes pending entries to the bolt
	// file without holding Log.mu. Whatever changes the bolt file or drops
	// pending entries waits for it first (Log.awaitFlush), so the flusher
	// only ever races with appends, which only add to pending.
	flushing bool
	// refs counts readers holding the segment outside Log.mu (Compacted).
	// A segment leaving the log while referenced is retired: the last
	// reader closes it.
	refs    int
	retired bool
}

func segmentName(first uint64) string { return fmt.Sprintf("segment-%020d.db", first) }

// parseSegmentName returns the first index named by a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "segment-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".db")
	if !ok || len(s) != 20 {
		return 0, false
	}
	first, err := strconv.ParseUint(s, 10, 64)
	return first, err == nil && first > 0
}

func (s *segment) errorf(format string, args ...any) error {
	return fmt.Errorf("log: segment %s: "+format, append([]any{s.path}, args...)...)
}

// empty reports whether a plain segment holds no entry (only the head may).
func (s *segment) empty() bool { return !s.cleaned && s.last < s.first }

// bounds returns the lowest and highest index held, ok false if none.
func (s *segment) bounds() (lo, hi uint64, ok bool) {
	switch {
	case s.cleaned && len(s.runs) > 0:
		return s.runs[0].lo, s.runs[len(s.runs)-1].hi, true
	case !s.cleaned && !s.empty():
		return s.first, s.last, true
	}
	return 0, 0, false
}

// holds reports whether the segment stores entry i.
func (s *segment) holds(i uint64) bool {
	if i < s.first || i > s.last {
		return false
	}
	if !s.cleaned {
		return true
	}
	k := sort.Search(len(s.runs), func(k int) bool { return s.runs[k].hi >= i })
	return k < len(s.runs) && s.runs[k].lo <= i
}

// each calls fn for every index held in [lo, hi], ascending, until fn
// returns false. For a plain segment the caller passes bounds within the
// segment, read under Log.mu (the head's last index moves with Save); a
// cleaned segment's runs never change.
func (s *segment) each(lo, hi uint64, fn func(i uint64) bool) {
	if !s.cleaned {
		for i := lo; i <= hi; i++ {
			if !fn(i) {
				return
			}
		}
		return
	}
	k := sort.Search(len(s.runs), func(k int) bool { return s.runs[k].hi >= lo })
	for _, r := range s.runs[k:] {
		if r.lo > hi {
			return
		}
		for i := max(lo, r.lo); i <= min(hi, r.hi); i++ {
			if !fn(i) {
				return
			}
		}
	}
}

// openSegment opens and checks an existing segment of the log with identity
// logID, read from the stable store at owner.
func openSegment(path string, first uint64, o *Options, logID []byte, owner string) (*segment, error) {
	s := &segment{path: path, first: first, last: first - 1}
	store, c, err := openBolt(path, o, segmentFormats, logID, owner)
	if err != nil {
		return nil, s.errorf("%w", err)
	}
	s.store = store
	if err := s.load(c); err != nil {
		store.Close()
		return nil, err
	}
	s.stored = s.last
	return s, nil
}

// load sets the range and runs from what scanBolt saw, checking them.
func (s *segment) load(c *boltContents) error {
	if got := c.conf[string(keyFirst)]; string(got) != string(uint64Bytes(s.first)) {
		return s.errorf("%w: records first index %x, its name says %d", ErrCorrupt, got, s.first)
	}
	if string(c.conf[string(keyFormat)]) == segmentFormat {
		switch {
		case len(c.runs) > 1:
			return s.errorf("%w: entry %d follows entry %d", ErrCorrupt, c.runs[1].lo, c.runs[0].hi)
		case len(c.runs) == 1 && c.runs[0].lo != s.first:
			return s.errorf("%w: starts at entry %d, want %d", ErrCorrupt, c.runs[0].lo, s.first)
		case len(c.runs) == 1:
			s.last = c.runs[0].hi
		}
		return nil
	}
	s.cleaned, s.sealed, s.runs = true, true, c.runs
	first, last, err := decodeRange(c.conf[string(keyRange)])
	if err != nil {
		return s.errorf("%w: range record: %v", ErrCorrupt, err)
	}
	if first != s.first || last < first {
		return s.errorf("%w: range record [%d, %d] does not start at %d", ErrCorrupt, first, last, s.first)
	}
	s.last = last
	if lo, hi, ok := s.bounds(); ok && (lo < first || hi > last) {
		return s.errorf("%w: holds entries [%d, %d] outside its range [%d, %d]", ErrCorrupt, lo, hi, first, last)
	}
	return nil
}

func encodeRange(first, last uint64) []byte {
	return sealRecord(binary.BigEndian.AppendUint64(uint64Bytes(first), last))
}

func decodeRange(v []byte) (first, last uint64, err error) {
	body, ok := openRecord(v)
	if !ok || len(body) != 16 {
		return 0, 0, errors.New("missing or damaged")
	}
	return binary.BigEndian.Uint64(body), binary.BigEndian.Uint64(body[8:]), nil
}

// createHead starts a new, empty head segment at first, with its journal:
// the bolt file is created (see createBolt for the crash ordering), the
// journal after it.
// A crash between the two leaves an empty segment without a journal, which
// Open gives one.
func createHead(dir string, first uint64, o *Options, logID []byte) (*segment, error) {
	s := &segment{path: filepath.Join(dir, segmentName(first)), first: first, last: first - 1, stored: first - 1}
	if err := s.create(o, logID, nil); err != nil {
		return nil, err
	}
	j, err := createJournal(dir, first, logID, o)
	if err != nil {
		s.close()
		return nil, s.errorf("%w", err)
	}
	s.journal = j
	return s, nil
}

// create writes the segment's bolt file with its records and ents, synced,
// and opens it.
func (s *segment) create(o *Options, logID []byte, ents []raft.Entry) error {
	records := [][2][]byte{{keyFormat, []byte(segmentFormat)}, {keyLogID, logID}, {keyFirst, uint64Bytes(s.first)}}
	store, err := createBolt(s.path, o, records, ents, "roll.before-rename", "roll.after-rename")
	if err != nil {
		return s.errorf("create: %w", err)
	}
	s.store = store
	if s.fileBytes, err = s.statSize(); err != nil {
		store.Close()
		return err
	}
	if len(ents) > 0 {
		s.last = ents[len(ents)-1].Index
		s.stored = s.last
	}
	return nil
}

// rebuildHead recreates the bolt file of the head segment starting at first
// from its journal, the record of what Saves returned for (see journal.go).
func rebuildHead(dir string, first uint64, o *Options, logID []byte) (*segment, error) {
	j, c, err := openJournal(filepath.Join(dir, journalName(first)), first, logID, o)
	if err != nil {
		return nil, err
	}
	s := &segment{path: filepath.Join(dir, segmentName(first)), first: first, last: first - 1, stored: first - 1}
	if err := s.create(o, logID, c.ents); err != nil {
		j.close()
		return nil, err
	}
	s.journal = j
	return s, nil
}

// get reads entry i, which the segment must hold. Callers hold Log.mu.
func (s *segment) get(i uint64) (raft.Entry, error) {
	if i > s.stored && i <= s.last {
		return s.pending[i-s.stored-1], nil
	}
	return s.getStored(i)
}

// getStored reads entry i from the bolt file. It needs no lock for entries
// at or below stored that no truncation can reach (Compacted's).
func (s *segment) getStored(i uint64) (raft.Entry, error) {
	var l hraft.Log
	// A value damaged on disk reaches go-msgpack here; keep whatever it
	// does with garbage an error.
	if err := safely(func() error { return s.store.GetLog(i, &l) }); err != nil {
		switch {
		case errors.Is(err, hraft.ErrLogNotFound):
			err = fmt.Errorf("%w: entry %d missing", ErrCorrupt, i)
		case errors.Is(err, bbolt.ErrDatabaseNotOpen), errors.Is(err, ErrCorrupt):
		default: // the value does not decode as a raft-boltdb log
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return raft.Entry{}, s.errorf("read entry %d: %w", i, err)
	}
	if l.Index != i {
		return raft.Entry{}, s.errorf("%w: entry %d stored under %d", ErrCorrupt, l.Index, i)
	}
	e := raft.Entry{Index: l.Index, Term: l.Term}
	if err := decodeEntry(l.Data, &e); err != nil {
		return raft.Entry{}, s.errorf("%w", err)
	}
	return e, nil
}

// maxPendingFlush bounds how many bytes of entries a head with a journal
// gathers before writing them to its bolt file in one transaction; a
// quarter of the segment size if that is less, so that the bolt file's
// size follows the segment's closely enough to seal it near SegmentSize.
const maxPendingFlush = 256 << 10

// append writes ents, which start at last+1: to the journal, durably, and
// to pending, for the flusher to write to the bolt file once enough have
// gathered (it reports whether they have).
func (s *segment) append(ents []raft.Entry, flushAt int) (flushDue bool, err error) {
	if s.journal == nil { // every head gets one when created or at Open
		return false, s.errorf("append to a segment without a journal (bug)")
	}
	if err := s.journal.append(ents); err != nil {
		return false, err
	}
	s.pending = append(s.pending, ents...)
	for k := range ents {
		s.pendingBytes += len(ents[k].Data) + 32
	}
	s.last = ents[len(ents)-1].Index
	return s.pendingBytes >= flushAt, nil
}

// checkIdle refuses a change to a segment the flusher is writing. Callers
// wait for the flusher before they start (Log.awaitFlush) — waiting here
// would release Log.mu in the middle of their change — so this is a bug.
func (s *segment) checkIdle() error {
	if s.flushing {
		return s.errorf("changed while the flusher writes it (bug)")
	}
	return nil
}

// flush writes the pending entries to the bolt file on the caller's
// goroutine. Callers hold Log.mu for writing.
func (s *segment) flush() error {
	if err := s.checkIdle(); err != nil {
		return err
	}
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.put(s.pending); err != nil {
		return err
	}
	size, err := s.statSize()
	if err != nil {
		return err
	}
	s.flushed(len(s.pending), size)
	return nil
}

// flushed records that the first n pending entries are in the bolt file,
// which is now size bytes.
func (s *segment) flushed(n int, size int64) {
	for k := range s.pending[:n] {
		s.pendingBytes -= len(s.pending[k].Data) + 32
	}
	rest := copy(s.pending, s.pending[n:])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	s.stored += uint64(n)
	s.fileBytes = size
}

// seal makes the segment take no more appends. A head with a journal
// writes its pending entries, syncs its bolt file and deletes the journal,
// in that order: once the journal is gone the bolt file is the segment.
func (s *segment) seal(noSync bool) error {
	if err := s.checkIdle(); err != nil {
		return err
	}
	if s.journal != nil {
		if err := s.flush(); err != nil {
			return err
		}
		if err := fail("seal.sync"); err != nil {
			return err
		}
		if !noSync {
			if err := s.store.Sync(); err != nil {
				return s.errorf("seal: sync: %w", err)
			}
		}
		if err := fail("seal.remove-journal"); err != nil {
			return err
		}
		if err := s.journal.remove(); err != nil {
			return err
		}
		s.journal = nil
	}
	s.sealed = true
	return nil
}

// put writes ents, ascending, in one transaction.
func (s *segment) put(ents []raft.Entry) error {
	if err := storeEntries(s.store, ents); err != nil {
		return s.errorf("store entries [%d, %d]: %w", ents[0].Index, ents[len(ents)-1].Index, err)
	}
	return nil
}

// storeEntries writes ents, ascending, to store in one transaction.
func storeEntries(store *raftboltdb.BoltStore, ents []raft.Entry) error {
	logs := make([]hraft.Log, len(ents))
	ptrs := make([]*hraft.Log, len(ents))
	for i := range ents {
		data, err := encodeEntry(&ents[i])
		if err != nil {
			return err
		}
		logs[i] = hraft.Log{Index: ents[i].Index, Term: ents[i].Term, Type: hraft.LogCommand, Data: data}
		ptrs[i] = &logs[i]
	}
	return store.StoreLogs(ptrs)
}

// truncateFrom deletes the entries from i on: pending ones in memory (the
// journal's next record truncates them there too), stored ones in one
// transaction, synced unless the journal still covers them.
func (s *segment) truncateFrom(i uint64, noSync bool) error {
	if err := s.checkIdle(); err != nil {
		return err
	}
	if i <= s.stored {
		if err := s.store.DeleteRange(i, s.stored); err != nil {
			return s.errorf("delete entries [%d, %d]: %w", i, s.stored, err)
		}
		s.stored = i - 1
	}
	if k := i - s.stored - 1; k < uint64(len(s.pending)) {
		clear(s.pending[k:])
		s.pending = s.pending[:k]
		s.pendingBytes = 0
		for _, e := range s.pending {
			s.pendingBytes += len(e.Data) + 32
		}
	}
	s.last = i - 1
	return nil
}

// size is the segment's size, which decides when it is sealed: its bolt
// file's, plus what a head has pending for it — or half its journal's, if
// more: truncations leave the journal longer than the entries it holds, and
// Open reads it whole.
func (s *segment) size() (int64, error) {
	if s.journal != nil {
		return max(s.fileBytes+int64(s.pendingBytes), s.journal.off/2), nil
	}
	return s.statSize()
}

// statSize is the bolt file's size on disk.
func (s *segment) statSize() (int64, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	return st.Size(), nil
}

func (s *segment) close() error {
	if err := s.checkIdle(); err != nil {
		return err
	}
	var jerr error
	if s.journal != nil {
		jerr = s.journal.close()
	}
	if err := s.store.Close(); err != nil {
		return s.errorf("close: %w", errors.Join(err, jerr))
	}
	return jerr
}

// unlink deletes the segment's file and syncs the directory, so that the
// removal is durable before the caller's next step. The open store keeps
// working for readers that still hold the segment.
func (s *segment) unlink(noSync bool) error {
	if err := s.checkIdle(); err != nil {
		return err
	}
	if err := os.Remove(s.path); err != nil {
		return s.errorf("remove: %w", err)
	}
	if s.journal != nil {
		// The bolt file first, durably: a journal left alone brings the
		// whole segment back at Open, while a bolt file left alone would be
		// taken for a sealed segment, which it may lag.
		if err := syncDir(filepath.Dir(s.path), noSync); err != nil {
			return s.errorf("remove: sync directory: %w", err)
		}
		if err := os.Remove(s.journal.path); err != nil {
			return s.errorf("remove journal: %w", err)
		}
	}
	if err := syncDir(filepath.Dir(s.path), noSync); err != nil {
		return s.errorf("remove: sync directory: %w", err)
	}
	return nil
}
