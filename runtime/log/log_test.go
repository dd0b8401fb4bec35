package log

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/copycat-go/copycat/runtime/raft"
)

// segmentFiles lists the first indexes of the segment files in dir.
func segmentFiles(t testing.TB, dir string) []uint64 {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	var firsts []uint64
	for _, de := range des {
		if first, ok := parseSegmentName(de.Name()); ok {
			firsts = append(firsts, first)
		}
	}
	return firsts
}

// fiveSegments builds a log with segments starting at 1, 6, 11, 16, 21.
func fiveSegments(t testing.TB) (*Log, []raft.Entry) {
	l := openLog(t, testOptions(t.TempDir()))
	var all []raft.Entry
	for lo := uint64(1); lo < 26; lo += 5 {
		ents := mkEnts(lo, lo+5, 1+lo/10)
		require.NoError(t, l.Save(raft.HardState{}, ents))
		all = append(all, ents...)
	}
	require.Equal(t, []uint64{1, 6, 11, 16, 21}, segmentFiles(t, l.opts.Dir))
	return l, all
}

func reopen(t *testing.T, l *Log) *Log {
	t.Helper()
	require.NoError(t, l.Close())
	return openLog(t, l.opts)
}

func TestRollAndReopen(t *testing.T) {
	l, all := fiveSegments(t)
	l = reopen(t, l)
	assert.Equal(t, all, viewOf(t, l).Entries)
	// The reopened head is full: the next batch rolls.
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(26, 28, 3)))
	assert.Equal(t, []uint64{1, 6, 11, 16, 21, 26}, segmentFiles(t, l.opts.Dir))
}

func TestNoRollBelowSegmentSize(t *testing.T) {
	o := testOptions(t.TempDir())
	o.SegmentSize = 1 << 20
	l := openLog(t, o)
	for lo := uint64(1); lo < 200; lo += 10 {
		require.NoError(t, l.Save(raft.HardState{}, mkEnts(lo, lo+10, 1)))
	}
	assert.Equal(t, []uint64{1}, segmentFiles(t, o.Dir))
	assert.Equal(t, mkEnts(1, 201, 1), viewOf(t, reopen(t, l)).Entries)
}

func TestTruncateAcrossSegments(t *testing.T) {
	tests := []struct {
		name     string
		from     uint64
		segments []uint64
	}{
		{"inside a middle segment", 8, []uint64{1, 6, 8}},
		{"at a segment start", 11, []uint64{1, 6, 11}},
		{"inside the head", 23, []uint64{1, 6, 11, 16, 21, 23}},
		{"everything", 1, []uint64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, all := fiveSegments(t)
			repl := mkEnts(tt.from, tt.from+3, 9)
			require.NoError(t, l.Save(raft.HardState{}, repl))
			want := append(slices.Clone(all[:tt.from-1]), repl...)
			assert.Equal(t, want, viewOf(t, l).Entries)
			assert.Equal(t, tt.segments, segmentFiles(t, l.opts.Dir))
			assert.Equal(t, want, viewOf(t, reopen(t, l)).Entries)
		})
	}
}

func TestCompactionRemovesSegments(t *testing.T) {
	tests := []struct {
		name     string
		meta     raft.SnapshotMeta
		segments []uint64
		first    uint64
		last     uint64
	}{
		{"inside the first segment", raft.SnapshotMeta{Index: 3, Term: 1}, []uint64{1, 6, 11, 16, 21}, 4, 25},
		{"at a segment end", raft.SnapshotMeta{Index: 10, Term: 1}, []uint64{11, 16, 21}, 11, 25},
		{"inside a middle segment", raft.SnapshotMeta{Index: 12, Term: 2}, []uint64{11, 16, 21}, 13, 25},
		{"at the last entry", raft.SnapshotMeta{Index: 25, Term: 3}, nil, 26, 25},
		{"beyond the last entry", raft.SnapshotMeta{Index: 40, Term: 5}, nil, 41, 40},
		{"conflicting term", raft.SnapshotMeta{Index: 12, Term: 7}, nil, 13, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, all := fiveSegments(t)
			require.NoError(t, l.SetCompaction(tt.meta))
			check := func(l *Log) {
				v := viewOf(t, l)
				assert.Equal(t, tt.first, v.First)
				assert.Equal(t, tt.last, v.Last)
				assert.Equal(t, tt.meta, v.Meta)
				if tt.last < 26 && tt.last >= tt.first {
					assert.Equal(t, all[tt.first-1:tt.last], v.Entries)
				}
				assert.Equal(t, tt.segments, segmentFiles(t, l.opts.Dir))
			}
			check(l)
			l = reopen(t, l)
			check(l)
			// The log goes on after the compaction point.
			require.NoError(t, l.Save(raft.HardState{}, mkEnts(tt.last+1, tt.last+3, 9)))
			check2 := viewOf(t, reopen(t, l))
			assert.Equal(t, tt.last+2, check2.Last)
		})
	}
}

func TestCommitWrittenOnCloseOnly(t *testing.T) {
	o := testOptions(t.TempDir())
	l := openLog(t, o)
	require.NoError(t, l.Save(raft.HardState{Term: 1, Vote: 1, Commit: 0}, mkEnts(1, 4, 1)))
	require.NoError(t, l.Save(raft.HardState{Term: 1, Vote: 1, Commit: 3}, nil))
	l.crash()
	l = openLog(t, o)
	hs, _, err := l.InitialState()
	require.NoError(t, err)
	assert.Equal(t, raft.HardState{Term: 1, Vote: 1, Commit: 0}, hs, "a commit change alone is not written")
	require.NoError(t, l.Save(raft.HardState{Term: 1, Vote: 1, Commit: 2}, nil))
	l = reopen(t, l)
	hs, _, err = l.InitialState()
	require.NoError(t, err)
	assert.Equal(t, raft.HardState{Term: 1, Vote: 1, Commit: 2}, hs, "Close writes the commit")
	require.NoError(t, l.Save(raft.HardState{Term: 2, Vote: 0, Commit: 3}, nil))
	l.crash()
	hs, _, err = openLog(t, o).InitialState()
	require.NoError(t, err)
	assert.Equal(t, raft.HardState{Term: 2, Vote: 0, Commit: 3}, hs, "a term change writes everything")
}

func TestCacheServesAndInvalidates(t *testing.T) {
	o := testOptions(t.TempDir())
	o.CacheSize = 3
	l := openLog(t, o)
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(1, 11, 1)))
	assert.Equal(t, []uint64{8, 9, 10}, cachedIndexes(l))
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(9, 10, 2)))
	assert.Equal(t, []uint64{8, 9}, cachedIndexes(l))
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(5, 6, 3)))
	assert.Equal(t, []uint64{5}, cachedIndexes(l))
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(6, 8, 3)))
	assert.Equal(t, []uint64{5, 6, 7}, cachedIndexes(l))
	want := append(mkEnts(1, 5, 1), mkEnts(5, 8, 3)...)
	assert.Equal(t, want, viewOf(t, l).Entries)
}

func cachedIndexes(l *Log) []uint64 {
	var idx []uint64
	for _, e := range l.cache.ents {
		idx = append(idx, e.Index)
	}
	return idx
}

func TestConcurrentReadsDuringSaves(t *testing.T) {
	l := openLog(t, testOptions(t.TempDir()))
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(1, 2, 1)))
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				last, err := l.LastIndex()
				assert.NoError(t, err)
				ents, err := l.Entries(1, last+1, 1<<20)
				assert.NoError(t, err)
				assert.Equal(t, mkEnts(1, last+1, 1), ents)
			}
		}()
	}
	for lo := uint64(2); lo < 100; lo += 3 {
		require.NoError(t, l.Save(raft.HardState{Term: 1}, mkEnts(lo, lo+3, 1)))
	}
	close(done)
	wg.Wait()
}

func TestSecondOpenFails(t *testing.T) {
	o := testOptions(t.TempDir())
	o.BoltOptions = &bbolt.Options{Timeout: 50 * time.Millisecond, NoFreelistSync: true}
	openLog(t, o)
	_, err := Open(o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(o.Dir, stableFile))
}

func TestOptions(t *testing.T) {
	o := Options{Dir: "d"}
	o.EnsureDefaults()
	assert.EqualValues(t, DefaultSegmentSize, o.SegmentSize)
	assert.Equal(t, DefaultCacheSize, o.CacheSize)
	assert.True(t, o.BoltOptions.NoFreelistSync)
	assert.Equal(t, bbolt.FreelistMapType, o.BoltOptions.FreelistType)
	require.NoError(t, o.Validate())

	plain := Options{NoBoltTuning: true}
	plain.EnsureDefaults()
	assert.False(t, plain.BoltOptions.NoFreelistSync)

	bad := Options{SegmentSize: -1, CacheSize: -1, BoltOptions: &bbolt.Options{ReadOnly: true}}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"dir", "segment size", "cache size", "read-only"} {
		assert.True(t, strings.Contains(err.Error(), want), "missing %q in %v", want, err)
	}
	_, err = Open(bad)
	assert.Error(t, err)
}
