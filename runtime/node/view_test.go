package node

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
)

func ents(lo, hi, term uint64, size int) []raft.Entry {
	var out []raft.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raft.Entry{Index: i, Term: term, Data: make([]byte, size)})
	}
	return out
}

// countingStore counts the entries the view reads from the storage.
type countingStore struct {
	rlog.Store
	reads int
}

func (s *countingStore) Entries(lo, hi, maxSize uint64) ([]raft.Entry, error) {
	e, err := s.Store.Entries(lo, hi, maxSize)
	s.reads += len(e)
	return e, err
}

func newTestView(t *testing.T, stored []raft.Entry) (*logView, *countingStore) {
	t.Helper()
	mem := rlog.NewMemory()
	require.NoError(t, mem.Save(raft.HardState{Term: 1}, stored))
	st := &countingStore{Store: mem}
	v, err := newLogView(st)
	require.NoError(t, err)
	return v, st
}

func TestLogView_Written(t *testing.T) {
	tests := []struct {
		name             string
		writes           [][]raft.Entry
		wantLo, wantLast uint64
		wantTermAt       map[uint64]uint64
	}{
		{"append", [][]raft.Entry{ents(1, 5, 1, 8), ents(6, 9, 1, 8)}, 1, 9, map[uint64]uint64{9: 1}},
		{"replace a suffix", [][]raft.Entry{ents(1, 9, 1, 8), ents(6, 7, 2, 8)}, 1, 7, map[uint64]uint64{5: 1, 6: 2, 7: 2}},
		{"replace everything", [][]raft.Entry{ents(3, 9, 1, 8), ents(2, 4, 2, 8)}, 2, 4, map[uint64]uint64{2: 2, 4: 2}},
		{"evict the oldest past the byte bound", [][]raft.Entry{ents(1, 3, 1, viewBytes/4), ents(4, 4, 1, viewBytes/4)}, 2, 4, map[uint64]uint64{2: 1, 4: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newTestView(t, nil)
			for _, w := range tt.writes {
				v.written(w)
			}
			require.NotEmpty(t, v.ents)
			assert.Equal(t, tt.wantLo, v.ents[0].Index)
			assert.Equal(t, tt.wantLast, v.last)
			last, _ := v.LastIndex()
			assert.Equal(t, tt.wantLast, last)
			for i, term := range tt.wantTermAt {
				got, err := v.Term(i)
				require.NoError(t, err)
				assert.Equal(t, term, got, "term at %d", i)
			}
			total := 0
			for i := range v.ents {
				total += entryBytes(&v.ents[i])
			}
			assert.Equal(t, total, v.bytes, "byte count follows the entries")
			assert.LessOrEqual(t, v.bytes, viewBytes+entryBytes(&v.ents[len(v.ents)-1]))
		})
	}
}

// Entries the view holds come from memory, as copies; older ones from the
// storage.
func TestLogView_EntriesFromMemoryAndStorage(t *testing.T) {
	stored := ents(1, 20, 1, 10)
	v, st := newTestView(t, stored)
	v.written(stored[10:]) // 11..20 are the newest writes: in memory
	v.newIteration()

	got, err := v.Entries(12, 16, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, []uint64{12, 13, 14, 15}, indexesOf(got))
	assert.Zero(t, st.reads, "served from memory")
	got[0].Term = 99
	term, _ := v.Term(12)
	assert.Equal(t, uint64(1), term, "callers get copies")

	got, err = v.Entries(12, 16, 50) // 42 bytes per entry: one, then the limit
	require.NoError(t, err)
	assert.Equal(t, []uint64{12}, indexesOf(got))

	got, err = v.Entries(5, 15, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, []uint64{5, 6, 7, 8, 9, 10}, indexesOf(got), "stops where memory starts")
	assert.Equal(t, 6, st.reads)
}

// Reads from the storage are bounded per loop iteration; past the budget
// each read returns one entry, and a new iteration renews it.
func TestLogView_ReadBudget(t *testing.T) {
	stored := ents(1, 3*readBudgetEntries, 1, 10)
	v, st := newTestView(t, stored)
	v.newIteration()
	got, err := v.Entries(1, uint64(len(stored))+1, 1<<30)
	require.NoError(t, err)
	assert.Len(t, got, readBudgetEntries)
	got, err = v.Entries(uint64(readBudgetEntries)+1, uint64(len(stored))+1, 1<<30)
	require.NoError(t, err)
	assert.Len(t, got, 1, "budget spent: one entry")
	v.newIteration()
	got, err = v.Entries(uint64(readBudgetEntries)+2, uint64(len(stored))+1, 1<<30)
	require.NoError(t, err)
	assert.Len(t, got, readBudgetEntries)
	assert.Equal(t, 2*readBudgetEntries+1, st.reads)

	// The byte budget too: entries of a quarter of it each.
	big := ents(1, 8, 1, readBudget/4)
	v, _ = newTestView(t, big)
	v.newIteration()
	got, err = v.Entries(1, 9, 1<<30)
	require.NoError(t, err)
	assert.Len(t, got, 3, "the fourth would pass the budget")
	got, err = v.Entries(4, 9, 1<<30)
	require.NoError(t, err)
	assert.Len(t, got, 1)
	got, err = v.Entries(5, 9, 1<<30)
	require.NoError(t, err)
	assert.Len(t, got, 1, "budget spent: one entry")
}

func indexesOf(es []raft.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Index)
	}
	return out
}

func TestMergeWrites(t *testing.T) {
	hs := func(term, commit uint64) raft.HardState { return raft.HardState{Term: term, Commit: commit} }
	w := func(h raft.HardState, e []raft.Entry) write { return write{rd: raft.Ready{HardState: h, Entries: e}} }
	tests := []struct {
		name      string
		batch     []write
		wantHS    raft.HardState
		wantIdx   []uint64
		wantTerms []uint64
	}{
		{"one", []write{w(hs(2, 1), ents(5, 6, 2, 1))}, hs(2, 1), []uint64{5, 6}, []uint64{2, 2}},
		{"appends", []write{w(hs(2, 1), ents(5, 6, 2, 1)), w(raft.HardState{}, ents(7, 8, 2, 1))}, hs(2, 1), []uint64{5, 6, 7, 8}, []uint64{2, 2, 2, 2}},
		{"the newest hard state", []write{w(hs(2, 1), nil), w(hs(2, 3), nil), w(raft.HardState{}, nil)}, hs(2, 3), nil, nil},
		{"a later Ready replaces a suffix", []write{w(raft.HardState{}, ents(5, 8, 2, 1)), w(hs(3, 4), ents(7, 7, 3, 1))}, hs(3, 4), []uint64{5, 6, 7}, []uint64{2, 2, 3}},
		{"a later Ready replaces everything", []write{w(raft.HardState{}, ents(5, 8, 2, 1)), w(raft.HardState{}, ents(4, 5, 3, 1)), w(raft.HardState{}, ents(6, 6, 3, 1))}, raft.HardState{}, []uint64{4, 5, 6}, []uint64{3, 3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []string
			for _, b := range tt.batch {
				before = append(before, fmt.Sprint(b.rd.Entries))
			}
			gotHS, got := mergeWrites(tt.batch)
			assert.Equal(t, tt.wantHS, gotHS)
			assert.Equal(t, tt.wantIdx, indexesOf(got))
			var terms []uint64
			for _, e := range got {
				terms = append(terms, e.Term)
			}
			assert.Equal(t, tt.wantTerms, terms)
			for i, b := range tt.batch {
				assert.Equal(t, before[i], fmt.Sprint(b.rd.Entries), "the Readys' own slices are not written to")
			}
		})
	}
}
