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
// (inside the log, beyond it, with conflicting terms), Compact (with and
// without images, at bad points too), Install (random streams, some
// invalid), Clean (with a growing dead set), Close/Open and crash/Open
// against a Log and against Memory, whose logic is raft.MemoryStorage's,
// and compares every read after every step, and what Compacted delivers.
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
			dead := deadSet{}
			var curTerm uint64 = 1
			for step := range steps {
				first, _ := m.FirstIndex()
				last, _ := m.LastIndex()
				hs, meta, _ := m.InitialState()
				var what string
				switch p := rng.IntN(100); {
				case p < 55:
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
				case p < 60:
					idx := first + uint64(rng.IntN(int(last-first+4)))
					term := curTerm
					if tm, err := m.Term(idx); err == nil && rng.IntN(4) != 0 {
						term = tm
					}
					cm := raft.SnapshotMeta{Index: idx, Term: term, Config: raft.Configuration{Index: idx - 1, Term: term}}
					for k := range rng.IntN(4) {
						cm.Config.Members = append(cm.Config.Members, raft.Member{ID: uint64(k + 1), Type: raft.Active, Addr: fmt.Sprint("h", k)})
					}
					what = fmt.Sprintf("set compaction at %d term %d", idx, term)
					errM, errL := m.SetCompaction(cm), l.SetCompaction(cm)
					require.Equal(t, errM == nil, errL == nil, "step %d: %s: memory %v, log %v", step, what, errM, errL)
				case p < 70:
					idx := first - 1 + uint64(rng.IntN(int(last-first+4)))
					term, err := m.Term(idx)
					if err != nil || rng.IntN(10) == 0 {
						term = curTerm + uint64(rng.IntN(2))
					}
					snap := raft.Snapshot{Meta: raft.SnapshotMeta{Index: idx, Term: term, Config: raft.Configuration{Index: idx, Term: term}}}
					if rng.IntN(4) != 0 {
						snap.Data = randomBytes(rng, 1+rng.IntN(2000))
					}
					what = fmt.Sprintf("compact at %d term %d with %d bytes", idx, term, len(snap.Data))
					errM, errL := m.Compact(snap), l.Compact(snap)
					require.Equal(t, errKind(errM), errKind(errL), "step %d: %s: memory %v, log %v", step, what, errM, errL)
				case p < 74:
					snap, ents := randomInstall(rng, meta.Index, last, curTerm)
					if rng.IntN(8) == 0 && len(ents) > 1 {
						ents[0], ents[1] = ents[1], ents[0] // invalid: out of order
					}
					curTerm = max(curTerm, snap.Meta.Term)
					what = fmt.Sprintf("install at %d term %d with %d entries", snap.Meta.Index, snap.Meta.Term, len(ents))
					errM, errL := m.Install(snap, streamOf(ents)), l.Install(snap, streamOf(ents))
					require.Equal(t, errM == nil, errL == nil, "step %d: %s: memory %v, log %v", step, what, errM, errL)
					if errM == nil {
						dead = deadSet{} // a new state: its own live set
					}
				case p < 80:
					for i := uint64(1); i <= meta.Index; i++ {
						if rng.IntN(3) == 0 {
							dead[i] = true
						}
					}
					what = "clean"
					_, errM := cleanNow(m, dead.live)
					_, errL := cleanNow(l, dead.live)
					require.NoError(t, errM, "step %d", step)
					require.NoError(t, errL, "step %d", step)
				case p < 86:
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
				compareCompacted(t, m, l, dead.live, fmt.Sprintf("step %d: %s", step, what))
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

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// randomInstall returns a snapshot above the compaction point c, around the
// last index, and a valid stream of entries at or below it.
func randomInstall(rng *rand.Rand, c, last, term uint64) (raft.Snapshot, []raft.Entry) {
	idx := c + 1 + uint64(rng.IntN(int(last-c+8)))
	meta := raft.SnapshotMeta{Index: idx, Term: term + uint64(rng.IntN(2)), Config: raft.Configuration{Index: idx, Term: term}}
	var ents []raft.Entry
	t := uint64(1)
	for i := uint64(1); i <= idx; i++ {
		if rng.IntN(3) != 0 {
			continue
		}
		t = min(meta.Term, t+uint64(rng.IntN(2)))
		if i == idx {
			t = meta.Term
		}
		e := raft.Entry{Index: i, Term: t, Type: raft.EntryNormal, Timestamp: int64(i)}
		if rng.IntN(4) != 0 {
			e.Data = randomBytes(rng, rng.IntN(200))
		}
		ents = append(ents, e)
	}
	snap := raft.Snapshot{Meta: meta}
	if rng.IntN(3) != 0 {
		snap.Data = randomBytes(rng, 1+rng.IntN(500))
	}
	return snap, ents
}

// compareCompacted checks what got's Compacted delivers against want's:
// want is a Memory, whose Clean drops every dead entry, got a Log, whose
// Clean drops some. So got must deliver every entry want does, and beyond
// those only dead ones.
func compareCompacted(t *testing.T, want, got Store, live func(uint64) bool, msg string) {
	t.Helper()
	w, g := compactedOf(t, want), compactedOf(t, got)
	require.Equal(t, liveOnly(w, live), liveOnly(g, live), "%s: live compacted entries", msg)
	k := 0
	for _, e := range g {
		if k < len(w) && w[k].Index == e.Index {
			require.True(t, entriesEqual(w[k], e), "%s: compacted entry %d differs", msg, e.Index)
			k++
			continue
		}
		require.False(t, live(e.Index), "%s: Log delivers live entry %d the model does not have", msg, e.Index)
	}
	require.Equal(t, len(w), k, "%s: Log lacks compacted entries the model has", msg)
}
