package log

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// testCleaningConformance is the log cleaning behaviour every Store shares:
// Compact, Install, Compacted and Clean. Each case runs its steps and checks
// the core's view and what Compacted delivers, then again after a reopen
// for stores that can.
//
// Log's Clean leaves some dead entries (those in segments above the
// threshold or not sealed), Memory's drops them all, so after a Clean the
// cases check that the live entries are exactly the expected ones and that
// every entry delivered is one that was stored.
func testCleaningConformance(t *testing.T, kind storeKind) {
	type step func(t *testing.T, s Store)
	none := raft.HardState{}
	save := func(hs raft.HardState, ents []raft.Entry) step {
		return func(t *testing.T, s Store) { require.NoError(t, s.Save(hs, ents)) }
	}
	saveEach := func(lo, hi, term uint64) step { // one batch per entry: many segments
		return func(t *testing.T, s Store) {
			for _, e := range mkEnts(lo, hi, term) {
				require.NoError(t, s.Save(none, []raft.Entry{e}))
			}
		}
	}
	compact := func(index, term uint64, image string) step {
		return func(t *testing.T, s Store) {
			require.NoError(t, s.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: index, Term: term, Config: testConfig}, Data: []byte(image)}))
		}
	}
	install := func(index, term uint64, image string, ents []raft.Entry) step {
		return func(t *testing.T, s Store) {
			require.NoError(t, s.Install(raft.Snapshot{Meta: raft.SnapshotMeta{Index: index, Term: term, Config: testConfig}, Data: []byte(image)}, streamOf(ents)))
		}
	}
	clean := func(live func(uint64) bool) step {
		return func(t *testing.T, s Store) {
			_, err := cleanNow(s, live)
			require.NoError(t, err)
		}
	}
	setCompaction := func(index, term uint64) step {
		return func(t *testing.T, s Store) {
			require.NoError(t, s.SetCompaction(raft.SnapshotMeta{Index: index, Term: term}))
		}
	}
	at := func(index, term uint64) raft.SnapshotMeta {
		return raft.SnapshotMeta{Index: index, Term: term, Config: testConfig}
	}
	cat := func(parts ...[]raft.Entry) []raft.Entry {
		var all []raft.Entry
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	pick := func(ents []raft.Entry, live func(uint64) bool) []raft.Entry { return liveOnly(ents, live) }
	img := func(s string) []byte { return []byte(s) }
	installed := []raft.Entry{mkEnts(2, 3, 1)[0], mkEnts(5, 6, 1)[0], mkEnts(19, 20, 3)[0]}

	tests := []struct {
		name  string
		steps []step
		want  view
		// compacted is what Compacted must deliver, or, with live set, its
		// live entries; stored then bounds what it may deliver.
		compacted []raft.Entry
		live      func(uint64) bool
		stored    []raft.Entry
	}{
		{"compact keeps the entries", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(6, 11, 2)), compact(7, 2, "image at 7")},
			view{Meta: at(7, 2), Image: img("image at 7"), First: 8, Last: 10, Entries: mkEnts(8, 11, 2)},
			cat(mkEnts(1, 6, 1), mkEnts(6, 8, 2)), nil, nil},
		{"compact at the last entry", []step{save(none, mkEnts(1, 6, 1)), compact(5, 1, "i")},
			view{Meta: at(5, 1), Image: img("i"), First: 6, Last: 5}, mkEnts(1, 6, 1), nil, nil},
		{"compact twice replaces the image", []step{saveEach(1, 11, 1), compact(3, 1, "a"), compact(6, 1, "b")},
			view{Meta: at(6, 1), Image: img("b"), First: 7, Last: 10, Entries: mkEnts(7, 11, 1)}, mkEnts(1, 7, 1), nil, nil},
		{"compact without an image", []step{save(none, mkEnts(1, 6, 1)), compact(3, 1, "a"), compact(5, 1, "")},
			view{Meta: at(5, 1), First: 6, Last: 5}, mkEnts(1, 6, 1), nil, nil},
		{"compact refuses bad points", []step{save(none, mkEnts(1, 6, 1)), compact(3, 1, "a"), func(t *testing.T, s Store) {
			snap := func(i, term uint64) raft.Snapshot { return raft.Snapshot{Meta: at(i, term), Data: []byte("x")} }
			assert.ErrorIs(t, s.Compact(snap(3, 1)), raft.ErrCompacted)
			assert.ErrorIs(t, s.Compact(snap(2, 1)), raft.ErrCompacted)
			assert.ErrorIs(t, s.Compact(snap(9, 1)), raft.ErrUnavailable)
			assert.Error(t, s.Compact(snap(5, 2)), "conflicting term")
		}}, view{Meta: at(3, 1), Image: img("a"), First: 4, Last: 5, Entries: mkEnts(4, 6, 1)}, mkEnts(1, 4, 1), nil, nil},
		{"clean drops dead entries", []step{saveEach(1, 31, 1), compact(25, 1, "c"), clean(everyNth(3))},
			view{Meta: at(25, 1), Image: img("c"), First: 26, Last: 30, Entries: mkEnts(26, 31, 1)},
			pick(mkEnts(1, 26, 1), everyNth(3)), everyNth(3), mkEnts(1, 26, 1)},
		{"clean keeps everything live", []step{saveEach(1, 21, 1), compact(20, 1, "c"), clean(func(uint64) bool { return true })},
			view{Meta: at(20, 1), Image: img("c"), First: 21, Last: 20}, mkEnts(1, 21, 1), nil, nil},
		{"clean of nothing live", []step{saveEach(1, 21, 1), compact(20, 1, "c"), clean(func(uint64) bool { return false }), save(none, mkEnts(21, 23, 2))},
			view{Meta: at(20, 1), Image: img("c"), First: 21, Last: 22, Entries: mkEnts(21, 23, 2)},
			nil, func(uint64) bool { return false }, mkEnts(1, 21, 1)},
		{"clean, compact, clean", []step{saveEach(1, 21, 1), compact(10, 1, "a"), clean(everyNth(2)), saveEach(21, 31, 2), compact(28, 2, "b"), clean(everyNth(4))},
			view{Meta: at(28, 2), Image: img("b"), First: 29, Last: 30, Entries: mkEnts(29, 31, 2)},
			pick(cat(mkEnts(1, 21, 1), mkEnts(21, 29, 2)), everyNth(4)), everyNth(4), cat(mkEnts(1, 21, 1), mkEnts(21, 29, 2))},
		{"install", []step{save(raft.HardState{Term: 3, Vote: 1, Commit: 4}, mkEnts(1, 6, 1)), compact(2, 1, "old"), install(20, 3, "new", installed), save(none, mkEnts(21, 23, 3))},
			view{HS: raft.HardState{Term: 3, Vote: 1, Commit: 4}, Meta: at(20, 3), Image: img("new"), First: 21, Last: 22, Entries: mkEnts(21, 23, 3)},
			installed, nil, nil},
		{"install with no entries and no image", []step{save(none, mkEnts(1, 6, 1)), install(20, 3, "", nil)},
			view{Meta: at(20, 3), First: 21, Last: 20}, nil, nil, nil},
		{"install inside the log", []step{save(none, mkEnts(1, 11, 1)), install(5, 1, "i", mkEnts(1, 6, 1)[1:3])},
			view{Meta: at(5, 1), Image: img("i"), First: 6, Last: 5}, mkEnts(1, 6, 1)[1:3], nil, nil},
		{"install refuses bad streams", []step{save(none, mkEnts(1, 6, 1)), compact(3, 1, "a"), func(t *testing.T, s Store) {
			snap := raft.Snapshot{Meta: at(20, 3), Data: []byte("x")}
			e := func(i, term uint64) raft.Entry { return raft.Entry{Index: i, Term: term} }
			for name, ents := range map[string][]raft.Entry{
				"above the snapshot": {e(4, 1), e(21, 3)},
				"out of order":       {e(5, 1), e(4, 1)},
				"repeated":           {e(5, 1), e(5, 1)},
				"terms going down":   {e(4, 2), e(5, 1)},
				"term above":         {e(4, 4)},
				"entry C's term":     {e(4, 1), e(20, 2)},
				"index 0":            {e(0, 1)},
			} {
				assert.Error(t, s.Install(snap, streamOf(ents)), name)
			}
			boom := errors.New("stream broke")
			err := s.Install(snap, func() (raft.Entry, bool, error) { return raft.Entry{}, false, boom })
			assert.ErrorIs(t, err, boom)
			assert.ErrorIs(t, s.Install(raft.Snapshot{Meta: at(3, 1)}, streamOf(nil)), raft.ErrCompacted)
		}}, view{Meta: at(3, 1), Image: img("a"), First: 4, Last: 5, Entries: mkEnts(4, 6, 1)}, mkEnts(1, 4, 1), nil, nil},
		{"set compaction after compact keeps nothing", []step{saveEach(1, 11, 1), compact(5, 1, "a"), setCompaction(8, 1)},
			view{Meta: raft.SnapshotMeta{Index: 8, Term: 1}, First: 9, Last: 10, Entries: mkEnts(9, 11, 1)}, nil, nil, nil},
		{"compact after set compaction keeps from there", []step{save(none, mkEnts(1, 11, 1)), setCompaction(3, 1), compact(7, 1, "x")},
			view{Meta: at(7, 1), Image: img("x"), First: 8, Last: 10, Entries: mkEnts(8, 11, 1)}, mkEnts(4, 8, 1), nil, nil},
		{"compact after install", []step{install(10, 3, "a", installed[:2]), saveEach(11, 16, 3), compact(13, 3, "b"), clean(func(i uint64) bool { return i != 5 })},
			view{Meta: at(13, 3), Image: img("b"), First: 14, Last: 15, Entries: mkEnts(14, 16, 3)},
			cat(installed[:1], mkEnts(11, 14, 3)), func(i uint64) bool { return i != 5 }, cat(installed[:2], mkEnts(11, 14, 3))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kind.open(t)
			for _, st := range tt.steps {
				st(t, s)
			}
			check := func(s Store) {
				got := viewOf(t, s)
				if len(got.Entries) == 0 {
					got.Entries = nil
				}
				assert.Equal(t, tt.want, got)
				checkReads(t, s, tt.want)
				c := compactedOf(t, s)
				if tt.live == nil {
					assert.Equal(t, tt.compacted, c)
					return
				}
				assert.Equal(t, tt.compacted, liveOnly(c, tt.live), "the live entries")
				for _, e := range c {
					assert.Contains(t, tt.stored, e, "an entry that was never stored")
				}
			}
			check(s)
			if kind.reopen != nil {
				check(kind.reopen(t, s))
			}
		})
	}

	t.Run("compacted stops at fn's error", func(t *testing.T) {
		s := kind.open(t)
		require.NoError(t, s.Save(none, mkEnts(1, 11, 1)))
		require.NoError(t, s.Compact(raft.Snapshot{Meta: at(10, 1)}))
		stop := errors.New("enough")
		var n int
		err := s.Compacted(func(raft.Entry) error {
			if n++; n == 4 {
				return stop
			}
			return nil
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 4, n)
	})

	t.Run("usage", func(t *testing.T) {
		s := kind.open(t)
		require.NoError(t, s.Save(none, mkEnts(1, 21, 1)))
		require.NoError(t, s.Compact(raft.Snapshot{Meta: at(15, 1), Data: []byte("image")}))
		u, err := s.Usage(everyNth(5))
		require.NoError(t, err)
		assert.EqualValues(t, 15, u.CompactionIndex)
		assert.EqualValues(t, 16, u.FirstIndex)
		assert.EqualValues(t, 20, u.LastIndex)
		assert.EqualValues(t, 20, u.Entries)
		assert.EqualValues(t, 3+5, u.Live, "5, 10, 15 and everything above 15")
		assert.True(t, u.LiveCounted)
		assert.GreaterOrEqual(t, u.ImageBytes, int64(len("image")), "the image (Log: its file, with a header)")
		u, err = s.Usage(nil)
		require.NoError(t, err)
		assert.False(t, u.LiveCounted)
		assert.Zero(t, u.Live)
	})

	t.Run("closed", func(t *testing.T) {
		s := kind.open(t)
		require.NoError(t, s.Close())
		assert.ErrorIs(t, s.Compact(raft.Snapshot{Meta: at(1, 1)}), ErrClosed)
		assert.ErrorIs(t, s.Install(raft.Snapshot{Meta: at(1, 1)}, streamOf(nil)), ErrClosed)
		assert.ErrorIs(t, s.Compacted(func(raft.Entry) error { return nil }), ErrClosed)
		_, err := cleanNow(s, everyNth(1))
		assert.ErrorIs(t, err, ErrClosed)
		_, err = s.Usage(nil)
		assert.ErrorIs(t, err, ErrClosed)
	})
}
