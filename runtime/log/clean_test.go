package log

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// fillLog saves entries [1, n] with data of size bytes, batch per Save, and
// returns them.
func fillLog(t testing.TB, s Store, n, batch uint64, size int) []raft.Entry {
	t.Helper()
	var all []raft.Entry
	for lo := uint64(1); lo <= n; lo += batch {
		ents := make([]raft.Entry, 0, batch)
		for i := lo; i < lo+batch && i <= n; i++ {
			data := bytes.Repeat([]byte{byte(i)}, size)
			copy(data, fmt.Sprint(i))
			ents = append(ents, raft.Entry{Index: i, Term: 1 + i/1000, Type: raft.EntryNormal, Timestamp: int64(i), Data: data})
		}
		require.NoError(t, s.Save(raft.HardState{}, ents))
		all = append(all, ents...)
	}
	return all
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

// TestCleanGivesSpaceBack writes many segments, compacts everything with
// about 5% of the entries live, cleans, and checks that the directory
// shrank to what the live entries need: the stable store and the image, the
// live entries at (at most twice) the space an entry took before cleaning,
// and a bolt file's fixed cost per segment file left. All live entries must still be readable
// in order, the dead ones gone, and the log must go on.
func TestCleanGivesSpaceBack(t *testing.T) {
	const n, batch, size = 8000, 20, 256
	o := testOptions(t.TempDir())
	o.SegmentSize = 64 << 10
	l := openLog(t, o)
	all := fillLog(t, l, n, batch, size)
	image := bytes.Repeat([]byte("image"), 100)
	require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: n, Term: all[n-1].Term}, Data: image}))
	live := everyNth(20)
	wantLive := liveOnly(all, live)

	fixed := fileSize(t, filepath.Join(o.Dir, stableFile)) + fileSize(t, filepath.Join(o.Dir, imageName(n, all[n-1].Term)))
	before := dirSize(t, o.Dir)
	segsBefore := len(segmentFiles(t, o.Dir))
	require.Greater(t, segsBefore, 50, "the test needs many segments")
	perEntry := float64(before-fixed) / n
	// The fixed cost of a segment file: a fresh log's first segment.
	fresh := openLog(t, testOptions(t.TempDir()))
	require.NoError(t, fresh.Save(raft.HardState{}, mkEnts(1, 2, 1)))
	perFile := fileSize(t, segPath(fresh.opts.Dir, 1))

	st, err := cleanNow(l, live)
	require.NoError(t, err)
	after := dirSize(t, o.Dir)
	segsAfter := len(segmentFiles(t, o.Dir))
	// Cleaned segments are written in smaller transactions than the
	// flusher's, so an entry may take up to twice the space there.
	bound := fixed + int64(segsAfter)*perFile + int64(2*float64(len(wantLive))*perEntry)
	t.Logf("%d segments, %d bytes before; %d segments, %d bytes after (bound %d); %+v", segsBefore, before, segsAfter, after, bound, st)
	assert.Less(t, after, bound)
	assert.Less(t, segsAfter, segsBefore/5, "small cleaned segments merge")
	assert.Equal(t, int64(len(wantLive)), st.EntriesKept)
	assert.Equal(t, int64(n-len(wantLive)), st.EntriesDropped)
	assert.Equal(t, segsBefore, st.SegmentsRewritten, "every segment is at or below C, the head sealed by Compact")
	assert.Equal(t, segsAfter, st.SegmentsWritten)
	assert.Equal(t, st.SegmentsRewritten-st.SegmentsWritten, st.SegmentsDeleted)
	assert.Equal(t, before-fixed, st.BytesBefore)
	assert.Equal(t, after-fixed, st.BytesAfter)

	assert.Equal(t, wantLive, compactedOf(t, l), "exactly the live entries, in order")
	l = reopen(t, l)
	assert.Equal(t, wantLive, compactedOf(t, l))
	snap, err := l.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, image, snap.Data)
	more := mkEnts(n+1, n+4, all[n-1].Term)
	require.NoError(t, l.Save(raft.HardState{}, more))
	assert.Equal(t, more, viewOf(t, reopen(t, l)).Entries)
}

func TestCleanThreshold(t *testing.T) {
	// Segments 1, 6, 11, 16, 21 of five entries; live fractions 3/5, 2/5,
	// 5/5, 1/5, 0/5.
	live := func(i uint64) bool {
		return i <= 3 || i == 6 || i == 7 || (i >= 11 && i <= 15) || i == 16
	}
	// With a segment size of 1 byte nothing merges but runs of segments
	// with nothing live; here 21 follows 16, which has a live entry.
	tests := []struct {
		threshold float64
		cleaned   []uint64
	}{
		{0, []uint64{6, 16, 21}}, // the default, 0.5
		{0.1, []uint64{21}},
		{0.25, []uint64{16, 21}},
		{0.7, []uint64{1, 6, 16, 21}}, // 11, all live, never
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.threshold), func(t *testing.T) {
			l, all := fiveSegments(t)
			require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 25, Term: 3}}))
			l.opts.CleanThreshold = tt.threshold
			l = reopen(t, l) // the head is no longer sealed: seal it again
			require.NoError(t, l.Save(raft.HardState{}, mkEnts(26, 27, 3)))
			_, err := cleanNow(l, live)
			require.NoError(t, err)
			u, err := l.Usage(live)
			require.NoError(t, err)
			var cleaned []uint64
			for _, s := range u.Segments {
				if s.Cleaned {
					cleaned = append(cleaned, s.First)
				}
			}
			assert.Equal(t, tt.cleaned, cleaned)
			assert.Equal(t, liveOnly(all, live), liveOnly(compactedOf(t, l), live))
		})
	}
}

// TestCleanMerges checks that adjacent small segments merge into one file,
// that a second Clean with nothing new to drop changes nothing, and that
// later dirty segments merge with the earlier cleaned one.
func TestCleanMerges(t *testing.T) {
	o := testOptions(t.TempDir())
	l := openLog(t, o) // a segment per batch
	all := fillLog(t, l, 100, 5, 100)
	require.NoError(t, l.Close())
	o.SegmentSize = 1 << 20 // now all twenty would fit in one
	l = openLog(t, o)
	require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 100, Term: all[99].Term}}))
	live := everyNth(20)

	st, err := cleanNow(l, live)
	require.NoError(t, err)
	// The head (96-100) was not sealed: it is small and the seal of a
	// reopened log is gone.
	assert.Equal(t, CleanStats{SegmentsRewritten: 19, SegmentsMerged: 19, SegmentsWritten: 1, SegmentsDeleted: 18, EntriesKept: 4, EntriesDropped: 91,
		BytesBefore: st.BytesBefore, BytesAfter: st.BytesAfter, Duration: st.Duration, LongestLockHold: st.LongestLockHold}, st)
	assert.Equal(t, []uint64{1, 96}, segmentFiles(t, o.Dir))
	assert.Equal(t, append(liveOnly(all[:95], live), all[95:]...), compactedOf(t, l))

	st, err = cleanNow(l, live)
	require.NoError(t, err)
	assert.Zero(t, st.SegmentsRewritten, "nothing new to drop, nothing to merge")

	// New dirty segments merge with the cleaned one.
	require.NoError(t, l.Close())
	o.SegmentSize = 1
	l = openLog(t, o)
	more := make([]raft.Entry, 0, 20)
	for lo := uint64(101); lo <= 120; lo += 5 {
		ents := mkEnts(lo, lo+5, all[99].Term)
		require.NoError(t, l.Save(raft.HardState{}, ents))
		more = append(more, ents...)
	}
	require.NoError(t, l.Close())
	o.SegmentSize = 1 << 20
	l = openLog(t, o)
	require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 120, Term: all[99].Term}}))
	st, err = cleanNow(l, live)
	require.NoError(t, err)
	assert.Equal(t, 1+1+3, st.SegmentsRewritten, "the cleaned one, the old head 96 and 101-115")
	assert.Equal(t, []uint64{1, 116}, segmentFiles(t, o.Dir))
	assert.Equal(t, append(liveOnly(append(all, more[:15]...), live), more[15:]...), compactedOf(t, l))
}

// TestCompactSealsLargeHead checks that Compact seals a head holding the
// compaction point once it is past a quarter of SegmentSize, so the next
// Save starts a new segment and the old head can be cleaned, and leaves a
// small head alone.
func TestCompactSealsLargeHead(t *testing.T) {
	for _, tt := range []struct {
		name    string
		segSize int64
		sealed  bool
	}{
		{"large head", 64 << 10, true}, // a bolt file holding anything is 32 KiB at least
		{"small head", 1 << 30, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(t.TempDir())
			o.SegmentSize = tt.segSize
			l := openLog(t, o)
			require.NoError(t, l.Save(raft.HardState{}, mkEnts(1, 11, 1)))
			require.Equal(t, []uint64{1}, segmentFiles(t, o.Dir))
			require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 7, Term: 1}}))
			require.NoError(t, l.Save(raft.HardState{}, mkEnts(11, 13, 1)))
			if !tt.sealed {
				assert.Equal(t, []uint64{1}, segmentFiles(t, o.Dir))
				return
			}
			assert.Equal(t, []uint64{1, 11}, segmentFiles(t, o.Dir))
			// Once C passes its end, the old head is cleaned.
			require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 11, Term: 1}}))
			st, err := cleanNow(l, everyNth(5))
			require.NoError(t, err)
			assert.Equal(t, 1, st.SegmentsRewritten)
			assert.Equal(t, liveOnly(mkEnts(1, 12, 1), everyNth(5)), liveOnly(compactedOf(t, l), everyNth(5)))
			assert.Equal(t, mkEnts(12, 13, 1), viewOf(t, l).Entries)
		})
	}
}

// TestSealedSegmentTakesNoAppends checks that a truncation making a sealed
// segment the last one does not make it take appends again: Clean may be
// rewriting it.
func TestSealedSegmentTakesNoAppends(t *testing.T) {
	o := testOptions(t.TempDir())
	o.SegmentSize = 1 << 30
	l := openLog(t, o)
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(1, 11, 1)))
	require.NoError(t, l.Close())
	o.SegmentSize = 1
	l = openLog(t, o)
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(11, 16, 1))) // rolls: 1 is sealed
	require.NoError(t, l.Save(raft.HardState{}, mkEnts(11, 13, 2))) // truncates all of 11
	assert.Equal(t, []uint64{1, 11}, segmentFiles(t, o.Dir), "a new segment at 11, not appends to 1")
	assert.Equal(t, append(mkEnts(1, 11, 1), mkEnts(11, 13, 2)...), viewOf(t, reopen(t, l)).Entries)
}

// TestInstallStreamsIntoSegments installs a stream larger than several
// segments: it is written as it arrives, rolling to a new staged segment
// near SegmentSize, and reads back whole after a reopen.
func TestInstallStreamsIntoSegments(t *testing.T) {
	o := testOptions(t.TempDir())
	o.SegmentSize = 256 << 10
	l := openLog(t, o)
	require.NoError(t, l.Save(raft.HardState{Term: 4, Vote: 2}, mkEnts(1, 30, 1)))
	var stream []raft.Entry
	for i := uint64(1); i <= 20000; i += 3 {
		stream = append(stream, raft.Entry{Index: i, Term: 1 + i/5000, Data: bytes.Repeat([]byte{byte(i)}, 200)})
	}
	meta := raft.SnapshotMeta{Index: 20001, Term: 5}
	require.NoError(t, l.Install(raft.Snapshot{Meta: meta, Data: []byte("image")}, streamOf(stream)))
	files := segmentFiles(t, o.Dir)
	t.Logf("%d entries installed into %d segments", len(stream), len(files))
	assert.Greater(t, len(files), 4)
	for _, first := range files[:len(files)-1] {
		// A batch past SegmentSize is at most SegmentSize/8 of Data, and
		// bolt doubles its file in steps: twice SegmentSize bounds a file.
		assert.LessOrEqual(t, fileSize(t, segPath(o.Dir, first)), 2*o.SegmentSize)
	}
	assert.Equal(t, stream, compactedOf(t, l))
	l = reopen(t, l)
	assert.Equal(t, stream, compactedOf(t, l))
	v := viewOf(t, l)
	assert.Equal(t, view{HS: raft.HardState{Term: 4, Vote: 2}, Meta: meta, Image: []byte("image"), First: 20002, Last: 20001}, v)
}

// TestCleanSkipsReplacedSegments checks that a Clean step whose segments an
// Install replaced after planning changes nothing.
func TestCleanSkipsReplacedSegments(t *testing.T) {
	l, _ := fiveSegments(t)
	require.NoError(t, l.Compact(snapAt(25, 3, "a")))
	var st CleanStats
	point := l.comp.meta.Index
	groups, err := l.planClean(point, everyNth(10), &st)
	require.NoError(t, err)
	require.NotEmpty(t, groups)
	installed := mkEnts(30, 31, 4)
	require.NoError(t, l.Install(snapAt(30, 4, "b"), streamOf(installed)))
	for _, g := range groups {
		require.NoError(t, l.cleanStep(point, g, everyNth(10), &st))
	}
	assert.Zero(t, st.SegmentsRewritten)
	assert.Equal(t, []uint64{30}, segmentFiles(t, l.opts.Dir))
	assert.Equal(t, installed, compactedOf(t, l))
}

// A live set describes one compaction point: Clean with an older point's
// set after an Install moved the point does nothing, instead of dropping
// the installed snapshot's live entries (which the older set does not name).
func TestCleanWithAnotherPointsLiveSetDoesNothing(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) Store{
		"log":    func(t *testing.T) Store { return openLog(t, Options{Dir: t.TempDir(), SegmentSize: 1}) },
		"memory": func(t *testing.T) Store { return NewMemory() },
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			require.NoError(t, s.Save(raft.HardState{Term: 1}, mkEnts(1, 60, 1)))
			require.NoError(t, s.Compact(snapAt(50, 1, "p")))
			older := func(i uint64) bool { return i == 10 } // p's live set
			installed := []raft.Entry{{Index: 120, Term: 2, Data: []byte("a")}, {Index: 140, Term: 2, Data: []byte("b")}}
			require.NoError(t, s.Install(snapAt(150, 2, "L"), streamOf(installed)))
			_, err := s.Clean(50, older)
			require.NoError(t, err)
			var got []uint64
			require.NoError(t, s.Compacted(func(e raft.Entry) error { got = append(got, e.Index); return nil }))
			assert.Equal(t, []uint64{120, 140}, got, "the installed snapshot's live entries survive")
		})
	}
}
