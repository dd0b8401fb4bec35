package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/copycat-go/copycat/runtime/raft"
)

const segmentFormat = "copycat log segment v1"

// segment is one BoltStore file holding the entries [first, last] (none
// when last == first-1). Its name carries first, and so does its keyFirst
// record, so a renamed or copied file is caught.
type segment struct {
	path  string
	first uint64
	last  uint64
	store *raftboltdb.BoltStore
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

func (s *segment) empty() bool { return s.last < s.first }

func (s *segment) errorf(format string, args ...any) error {
	return fmt.Errorf("log: segment %s: "+format, append([]any{s.path}, args...)...)
}

// openSegment opens and checks an existing segment of the log with identity
// logID, read from the stable store at owner.
func openSegment(path string, first uint64, o *Options, logID []byte, owner string) (*segment, error) {
	s := &segment{path: path, first: first, last: first - 1}
	store, c, err := openBolt(path, o, segmentFormat, logID, owner)
	if err != nil {
		return nil, s.errorf("%w", err)
	}
	s.store = store
	if got := c.conf[string(keyFirst)]; string(got) != string(uint64Bytes(first)) {
		store.Close()
		return nil, s.errorf("%w: records first index %x, its name says %d", ErrCorrupt, got, first)
	}
	if c.logs > 0 {
		if c.firstLog != first {
			store.Close()
			return nil, s.errorf("%w: starts at entry %d, want %d", ErrCorrupt, c.firstLog, first)
		}
		s.last = c.lastLog
	}
	return s, nil
}

// createSegment starts a new, empty segment at first (see createBolt for the
// crash ordering).
func createSegment(dir string, first uint64, o *Options, logID []byte) (*segment, error) {
	s := &segment{path: filepath.Join(dir, segmentName(first)), first: first, last: first - 1}
	records := [][2][]byte{{keyFormat, []byte(segmentFormat)}, {keyLogID, logID}, {keyFirst, uint64Bytes(first)}}
	store, err := createBolt(s.path, o, records, "roll.before-rename", "roll.after-rename")
	if err != nil {
		return nil, s.errorf("create: %w", err)
	}
	s.store = store
	return s, nil
}

// get reads entry i, which must lie in [first, last].
func (s *segment) get(i uint64) (raft.Entry, error) {
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

// append writes ents, which start at last+1, in one transaction.
func (s *segment) append(ents []raft.Entry) error {
	logs := make([]hraft.Log, len(ents))
	ptrs := make([]*hraft.Log, len(ents))
	for i := range ents {
		data, err := encodeEntry(&ents[i])
		if err != nil {
			return s.errorf("%w", err)
		}
		logs[i] = hraft.Log{Index: ents[i].Index, Term: ents[i].Term, Type: hraft.LogCommand, Data: data}
		ptrs[i] = &logs[i]
	}
	if err := s.store.StoreLogs(ptrs); err != nil {
		return s.errorf("store entries [%d, %d]: %w", ents[0].Index, ents[len(ents)-1].Index, err)
	}
	s.last = ents[len(ents)-1].Index
	return nil
}

// truncateFrom deletes the entries from i on, in one transaction.
func (s *segment) truncateFrom(i uint64) error {
	if err := s.store.DeleteRange(i, s.last); err != nil {
		return s.errorf("delete entries [%d, %d]: %w", i, s.last, err)
	}
	s.last = i - 1
	return nil
}

// size is the segment's file size, which decides when it is sealed.
func (s *segment) size() (int64, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	return st.Size(), nil
}

func (s *segment) close() error {
	if err := s.store.Close(); err != nil {
		return s.errorf("close: %w", err)
	}
	return nil
}

// remove closes and deletes the segment's file and syncs the directory, so
// that the removal is durable before the caller's next step.
func (s *segment) remove(noSync bool) error {
	s.store.Close()
	if err := os.Remove(s.path); err != nil {
		return s.errorf("remove: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path), noSync); err != nil {
		return s.errorf("remove: sync directory: %w", err)
	}
	return nil
}
