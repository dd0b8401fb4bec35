package log

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// storeKind builds Stores for the conformance suite. reopen closes s and
// returns it opened again, or is nil for stores that cannot be reopened.
type storeKind struct {
	open   func(t *testing.T) Store
	reopen func(t *testing.T, s Store) Store
}

func TestConformanceMemory(t *testing.T) {
	testConformance(t, storeKind{open: func(*testing.T) Store { return NewMemory() }})
}

func TestConformanceLog(t *testing.T) {
	for name, segSize := range map[string]int64{"segment per batch": 1, "one segment": 1 << 30} {
		t.Run(name, func(t *testing.T) {
			testConformance(t, storeKind{
				open: func(t *testing.T) Store {
					o := testOptions(t.TempDir())
					o.SegmentSize = segSize
					return openLog(t, o)
				},
				reopen: func(t *testing.T, s Store) Store {
					l := s.(*Log)
					require.NoError(t, l.Close())
					return openLog(t, l.opts)
				},
			})
		})
	}
}

var testConfig = raft.Configuration{Index: 3, Term: 1, Members: []raft.Member{{ID: 1, Type: raft.Active, Addr: "a:1"}, {ID: 2, Type: raft.Passive, Addr: "b:2"}}}

// testConformance is the behaviour every Store shares. Each case runs its
// steps, checks the resulting view, and, for stores that can, checks it again
// after a reopen.
func testConformance(t *testing.T, kind storeKind) {
	type step func(t *testing.T, s Store)
	save := func(hs raft.HardState, ents ...[]raft.Entry) step {
		return func(t *testing.T, s Store) {
			var all []raft.Entry
			for _, e := range ents {
				all = append(all, e...)
			}
			require.NoError(t, s.Save(hs, all))
		}
	}
	saveErr := func(ents []raft.Entry) step {
		return func(t *testing.T, s Store) { assert.Error(t, s.Save(raft.HardState{}, ents)) }
	}
	compact := func(m raft.SnapshotMeta) step {
		return func(t *testing.T, s Store) { require.NoError(t, s.SetCompaction(m)) }
	}
	cat := func(parts ...[]raft.Entry) []raft.Entry {
		var all []raft.Entry
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	none := raft.HardState{}
	tests := []struct {
		name  string
		steps []step
		want  view
	}{
		{"empty", nil, view{First: 1, Last: 0}},
		{"append", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(6, 11, 2))},
			view{First: 1, Last: 10, Entries: cat(mkEnts(1, 6, 1), mkEnts(6, 11, 2))}},
		{"hard state", []step{save(raft.HardState{Term: 2, Vote: 3, Commit: 0}, mkEnts(1, 3, 2)), save(raft.HardState{Term: 2, Vote: 3, Commit: 2}), save(none)},
			view{HS: raft.HardState{Term: 2, Vote: 3, Commit: 2}, First: 1, Last: 2, Entries: mkEnts(1, 3, 2)}},
		{"truncate suffix", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(6, 11, 1)), save(none, mkEnts(4, 7, 2))},
			view{First: 1, Last: 6, Entries: cat(mkEnts(1, 4, 1), mkEnts(4, 7, 2))}},
		{"truncate all", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(1, 3, 2))},
			view{First: 1, Last: 2, Entries: mkEnts(1, 3, 2)}},
		{"rewrite same suffix", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(3, 9, 1))},
			view{First: 1, Last: 8, Entries: mkEnts(1, 9, 1)}},
		{"reject gap", []step{save(none, mkEnts(1, 4, 1)), saveErr(mkEnts(5, 6, 1))},
			view{First: 1, Last: 3, Entries: mkEnts(1, 4, 1)}},
		{"reject non-contiguous batch", []step{saveErr(append(mkEnts(1, 2, 1), mkEnts(3, 4, 1)...))}, view{First: 1}},
		{"reject decreasing terms", []step{save(none, mkEnts(1, 3, 2)), saveErr(mkEnts(3, 4, 1)), saveErr(append(mkEnts(3, 4, 3), mkEnts(4, 5, 2)...))},
			view{First: 1, Last: 2, Entries: mkEnts(1, 3, 2)}},
		{"compact inside", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(6, 11, 2)), compact(raft.SnapshotMeta{Index: 7, Term: 2, Config: testConfig})},
			view{Meta: raft.SnapshotMeta{Index: 7, Term: 2, Config: testConfig}, First: 8, Last: 10, Entries: mkEnts(8, 11, 2)}},
		{"compact at last", []step{save(none, mkEnts(1, 6, 1)), compact(raft.SnapshotMeta{Index: 5, Term: 1})},
			view{Meta: raft.SnapshotMeta{Index: 5, Term: 1}, First: 6, Last: 5}},
		{"compact then append over compacted", []step{save(none, mkEnts(1, 6, 1)), compact(raft.SnapshotMeta{Index: 3, Term: 1}), save(none, mkEnts(2, 8, 1))},
			view{Meta: raft.SnapshotMeta{Index: 3, Term: 1}, First: 4, Last: 7, Entries: mkEnts(4, 8, 1)}},
		{"compact then conflicting append", []step{save(none, mkEnts(1, 6, 1)), compact(raft.SnapshotMeta{Index: 3, Term: 1}), save(none, mkEnts(4, 6, 2))},
			view{Meta: raft.SnapshotMeta{Index: 3, Term: 1}, First: 4, Last: 5, Entries: mkEnts(4, 6, 2)}},
		{"append wholly compacted", []step{save(none, mkEnts(1, 6, 1)), compact(raft.SnapshotMeta{Index: 4, Term: 1}), save(none, mkEnts(2, 4, 1))},
			view{Meta: raft.SnapshotMeta{Index: 4, Term: 1}, First: 5, Last: 5, Entries: mkEnts(5, 6, 1)}},
		{"compact beyond last", []step{save(none, mkEnts(1, 6, 1)), compact(raft.SnapshotMeta{Index: 20, Term: 3, Config: testConfig}), save(none, mkEnts(21, 23, 3))},
			view{Meta: raft.SnapshotMeta{Index: 20, Term: 3, Config: testConfig}, First: 21, Last: 22, Entries: mkEnts(21, 23, 3)}},
		{"compact beyond last then gap", []step{save(none, mkEnts(1, 6, 1)), compact(raft.SnapshotMeta{Index: 20, Term: 3}), saveErr(mkEnts(22, 23, 3))},
			view{Meta: raft.SnapshotMeta{Index: 20, Term: 3}, First: 21, Last: 20}},
		{"compact with conflicting term", []step{save(none, mkEnts(1, 6, 1)), save(none, mkEnts(6, 11, 1)), compact(raft.SnapshotMeta{Index: 7, Term: 2})},
			view{Meta: raft.SnapshotMeta{Index: 7, Term: 2}, First: 8, Last: 7}},
		{"compact twice", []step{save(none, mkEnts(1, 11, 1)), compact(raft.SnapshotMeta{Index: 3, Term: 1}), compact(raft.SnapshotMeta{Index: 6, Term: 1}),
			func(t *testing.T, s Store) {
				assert.ErrorIs(t, s.SetCompaction(raft.SnapshotMeta{Index: 6, Term: 1}), raft.ErrCompacted)
				assert.ErrorIs(t, s.SetCompaction(raft.SnapshotMeta{Index: 2, Term: 1}), raft.ErrCompacted)
			}},
			view{Meta: raft.SnapshotMeta{Index: 6, Term: 1}, First: 7, Last: 10, Entries: mkEnts(7, 11, 1)}},
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
			}
			check(s)
			if kind.reopen != nil {
				check(kind.reopen(t, s))
			}
		})
	}

	t.Run("size limits", func(t *testing.T) {
		s := kind.open(t)
		ents := mkEnts(1, 11, 1) // Data of 16 or 17 bytes: 48 or 49 per entry
		require.NoError(t, s.Save(raft.HardState{}, ents))
		for _, tt := range []struct{ max, n uint64 }{{0, 1}, {47, 1}, {48, 1}, {96, 2}, {97, 2}, {1000, 10}} {
			got, err := s.Entries(1, 11, tt.max)
			require.NoError(t, err)
			assert.Len(t, got, int(tt.n), "maxSize %d", tt.max)
		}
		got, err := s.Entries(9, 11, 100)
		require.NoError(t, err)
		assert.Equal(t, mkEnts(9, 11, 1), got)
	})

	t.Run("cleaning", func(t *testing.T) { testCleaningConformance(t, kind) })

	t.Run("closed", func(t *testing.T) {
		s := kind.open(t)
		require.NoError(t, s.Close())
		assert.ErrorIs(t, s.Close(), ErrClosed)
		assert.ErrorIs(t, s.Save(raft.HardState{Term: 1}, nil), ErrClosed)
		assert.ErrorIs(t, s.SetCompaction(raft.SnapshotMeta{Index: 1}), ErrClosed)
		_, err := s.LastIndex()
		assert.ErrorIs(t, err, ErrClosed)
		_, err = s.Entries(1, 1, 0)
		assert.ErrorIs(t, err, ErrClosed)
	})
}

// checkReads checks the errors at the edges of the view.
func checkReads(t *testing.T, s Store, want view) {
	t.Helper()
	_, err := s.Entries(want.First-1, want.Last+1, 0)
	if want.First > 1 {
		assert.ErrorIs(t, err, raft.ErrCompacted)
	}
	_, err = s.Entries(want.First, want.Last+2, 0)
	assert.ErrorIs(t, err, raft.ErrUnavailable)
	_, err = s.Entries(want.First+1, want.First, 0)
	assert.Error(t, err)
	got, err := s.Entries(want.First, want.First, 0)
	assert.NoError(t, err)
	assert.Empty(t, got)
}
