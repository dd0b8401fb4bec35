package log

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	l.stopFlusher()
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
	Image   []byte
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
	v.Image = snap.Data
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

// compactedOf returns what s.Compacted delivers, checking the order.
func compactedOf(t testing.TB, s Store) []raft.Entry {
	t.Helper()
	var got []raft.Entry
	require.NoError(t, s.Compacted(func(e raft.Entry) error {
		if n := len(got); n > 0 {
			require.Greater(t, e.Index, got[n-1].Index, "Compacted out of order")
		}
		got = append(got, e)
		return nil
	}))
	return got
}

// liveOnly returns the entries of ents that live reports live.
func liveOnly(ents []raft.Entry, live func(uint64) bool) []raft.Entry {
	var out []raft.Entry
	for _, e := range ents {
		if live(e.Index) {
			out = append(out, e)
		}
	}
	return out
}

// deadSet is a live set for tests: everything is live but what was killed.
// Liveness is monotonic, as Store requires.
type deadSet map[uint64]bool

func (d deadSet) live(i uint64) bool { return !d[i] }

// everyNth returns a live set keeping the indexes divisible by n.
func everyNth(n uint64) func(uint64) bool { return func(i uint64) bool { return i%n == 0 } }

// streamOf returns a next function for Install delivering ents.
func streamOf(ents []raft.Entry) func() (raft.Entry, bool, error) {
	return func() (raft.Entry, bool, error) {
		if len(ents) == 0 {
			return raft.Entry{}, false, nil
		}
		e := ents[0]
		ents = ents[1:]
		return e, true, nil
	}
}

// dirSize is the total size of the regular files in dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	var n int64
	for _, de := range des {
		info, err := de.Info()
		require.NoError(t, err)
		n += info.Size()
	}
	return n
}

// snapAt is a snapshot at index and term with image as its Data.
func snapAt(index, term uint64, image string) raft.Snapshot {
	return raft.Snapshot{Meta: raft.SnapshotMeta{Index: index, Term: term}, Data: []byte(image)}
}

// cleanNow cleans s with live describing its current compaction point.
func cleanNow(s Store, live func(uint64) bool) (CleanStats, error) {
	snap, err := s.Snapshot()
	if err != nil {
		return CleanStats{}, err
	}
	return s.Clean(snap.Meta.Index, live)
}
