package log

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// testOptions are fast options for tests: no fsync, one segment per batch, a
// small cache so reads also go to bolt.
func testOptions(dir string) Options {
	return Options{Dir: dir, NoSync: true, SegmentSize: 1, CacheSize: 4, Logger: slog.New(slog.DiscardHandler)}
}

func openLog(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { l.crash() })
	return l
}

// crash closes the files as a killed process would: nothing more is written.
// It is safe to call on a closed Log.
func (l *Log) crash() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	_ = l.closeFiles()
}

// mkEnts returns entries [lo, hi) of the given term with distinct data.
func mkEnts(lo, hi, term uint64) []raft.Entry {
	var ents []raft.Entry
	for i := lo; i < hi; i++ {
		ents = append(ents, raft.Entry{
			Index: i, Term: term, Type: raft.EntryNormal,
			Timestamp: int64(i * 1000), Data: fmt.Appendf(nil, "entry %d term %d", i, term),
		})
	}
	return ents
}

// view is everything a Store shows through raft.Storage.
type view struct {
	HS      raft.HardState
	Meta    raft.SnapshotMeta
	First   uint64
	Last    uint64
	Entries []raft.Entry
}

func viewOf(t testing.TB, s Store) view {
	t.Helper()
	var v view
	var err error
	v.HS, v.Meta, err = s.InitialState()
	require.NoError(t, err)
	v.First, err = s.FirstIndex()
	require.NoError(t, err)
	v.Last, err = s.LastIndex()
	require.NoError(t, err)
	snap, err := s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, v.Meta, snap.Meta)
	require.Nil(t, snap.Data)
	v.Entries, err = s.Entries(v.First, v.Last+1, ^uint64(0))
	require.NoError(t, err)
	for _, e := range v.Entries {
		term, err := s.Term(e.Index)
		require.NoError(t, err)
		require.Equal(t, e.Term, term, "term of %d", e.Index)
	}
	term, err := s.Term(v.First - 1)
	require.NoError(t, err)
	require.Equal(t, v.Meta.Term, term)
	_, err = s.Term(v.Last + 1)
	require.ErrorIs(t, err, raft.ErrUnavailable)
	if v.First > 1 {
		_, err = s.Term(v.First - 2)
		require.ErrorIs(t, err, raft.ErrCompacted)
	}
	return v
}

func isPrefix(short, long []raft.Entry) bool {
	if len(short) > len(long) {
		return false
	}
	for i := range short {
		if !entriesEqual(short[i], long[i]) {
			return false
		}
	}
	return true
}

func entriesEqual(a, b raft.Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && a.Timestamp == b.Timestamp && string(a.Data) == string(b.Data)
}

func commonPrefix(a, b []raft.Entry) int {
	n := 0
	for n < len(a) && n < len(b) && entriesEqual(a[n], b[n]) {
		n++
	}
	return n
}

// errKind classifies a Storage error for comparisons across implementations.
func errKind(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, raft.ErrCompacted):
		return "compacted"
	case errors.Is(err, raft.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrClosed):
		return "closed"
	}
	return "other"
}
