package log

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// TestRandomAgainstModel runs random sequences of Save (appends, truncations,
// batches overlapping the compaction point, invalid batches), SetCompaction
// (inside the log, beyond it, with conflicting terms), Close/Open and
// crash/Open against a Log and against Memory, whose logic is
// raft.MemoryStorage's, and compares every read after every step.
func TestRandomAgainstModel(t *testing.T) {
	seeds, steps := 12, 250
	if testing.Short() {
		seeds, steps = 3, 100
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			o := testOptions(t.TempDir())
			o.SegmentSize = []int64{1, 24 << 10, 1 << 30}[seed%3]
			o.CacheSize = []int{1, 5, 64}[rng.IntN(3)]
			l := openLog(t, o)
			m := NewMemory()
			var curTerm uint64 = 1
			for step := range steps {
				first, _ := m.FirstIndex()
				last, _ := m.LastIndex()
				hs, meta, _ := m.InitialState()
				var what string
				switch p := rng.IntN(100); {
				case p < 65:
					lo := last + 1 - uint64(rng.IntN(int(min(last+1, 9))))
					t0 := meta.Term
					if tl, err := m.Term(lo - 1); err == nil {
						t0 = tl
					}
					if rng.IntN(4) == 0 {
						curTerm++
						t0 = curTerm
					}
					if rng.IntN(20) == 0 && t0 > 0 {
						t0-- // usually invalid: below the previous entry's term
					}
					ents := randomEntries(rng, lo, 1+rng.IntN(8), t0)
					if rng.IntN(30) == 0 && len(ents) > 1 {
						ents[1].Index += 5 // not contiguous
					}
					newHS := raft.HardState{}
					if rng.IntN(3) == 0 {
						newHS = hs
						newHS.Commit = max(hs.Commit, uint64(rng.IntN(int(last+1))))
						if rng.IntN(2) == 0 || hs.Term == 0 {
							curTerm++
							newHS.Term, newHS.Vote = curTerm, uint64(rng.IntN(4))
						}
					}
					what = fmt.Sprintf("save %v %d entries from %d term %d", newHS, len(ents), lo, t0)
					errM, errL := m.Save(newHS, ents), l.Save(newHS, ents)
					require.Equal(t, errM == nil, errL == nil, "step %d: %s: memory %v, log %v", step, what, errM, errL)
				case p < 77:
					idx := first + uint64(rng.IntN(int(last-first+4)))
					term := curTerm
					if tm, err := m.Term(idx); err == nil && rng.IntN(4) != 0 {
						term = tm
					}
					cm := raft.SnapshotMeta{Index: idx, Term: term, Config: raft.Configuration{Index: idx - 1, Term: term}}
					for k := range rng.IntN(4) {
						cm.Config.Members = append(cm.Config.Members, raft.Member{ID: uint64(k + 1), Type: raft.Active, Addr: fmt.Sprint("h", k)})
					}
					what = fmt.Sprintf("compact at %d term %d", idx, term)
					errM, errL := m.SetCompaction(cm), l.SetCompaction(cm)
					require.Equal(t, errM == nil, errL == nil, "step %d: %s: memory %v, log %v", step, what, errM, errL)
				case p < 85:
					what = "close and open"
					require.NoError(t, l.Close())
					l = openLog(t, o)
				case p < 93:
					what = "crash and open"
					l.crash()
					l = openLog(t, o)
					got, _, err := l.InitialState()
					require.NoError(t, err)
					require.LessOrEqual(t, got.Commit, hs.Commit, "step %d", step)
					require.NoError(t, m.ms.SetHardState(got)) // the model forgets the commit too
				default:
					what = "read"
				}
				compareStores(t, rng, m, l, fmt.Sprintf("step %d: %s", step, what))
			}
		})
	}
}

func randomEntries(rng *rand.Rand, lo uint64, n int, term uint64) []raft.Entry {
	ents := make([]raft.Entry, n)
	for k := range ents {
		if rng.IntN(6) == 0 {
			term++
		}
		e := raft.Entry{Index: lo + uint64(k), Term: term, Type: raft.EntryType(rng.IntN(3)), Timestamp: rng.Int64()}
		if rng.IntN(5) != 0 {
			e.Data = make([]byte, rng.IntN(300))
			for i := range e.Data {
				e.Data[i] = byte(rng.Uint32())
			}
		}
		ents[k] = e
	}
	return ents
}

// compareStores checks that got shows exactly what want shows.
func compareStores(t *testing.T, rng *rand.Rand, want, got Store, msg string) {
	t.Helper()
	wv, gv := viewOf(t, want), viewOf(t, got)
	require.Equal(t, wv, gv, msg)
	for i := wv.First - min(wv.First, 2); i <= wv.Last+2; i++ {
		wt, werr := want.Term(i)
		gt, gerr := got.Term(i)
		require.Equal(t, errKind(werr), errKind(gerr), "%s: Term(%d)", msg, i)
		require.Equal(t, wt, gt, "%s: Term(%d)", msg, i)
	}
	for range 4 {
		lo := wv.First - min(wv.First, 1) + uint64(rng.IntN(int(wv.Last-wv.First+3)))
		hi := lo + uint64(rng.IntN(int(wv.Last-wv.First+3)))
		maxSize := uint64(rng.IntN(1200))
		we, werr := want.Entries(lo, hi, maxSize)
		ge, gerr := got.Entries(lo, hi, maxSize)
		require.Equal(t, errKind(werr), errKind(gerr), "%s: Entries(%d, %d, %d): %v, %v", msg, lo, hi, maxSize, werr, gerr)
		require.Equal(t, we, ge, "%s: Entries(%d, %d, %d)", msg, lo, hi, maxSize)
	}
}
