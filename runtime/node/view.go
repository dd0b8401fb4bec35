package node

import (
	"fmt"
	"math"

	"github.com/copycat-go/copycat/runtime/raft"
)

const (
	// viewBytes bounds what the view keeps of the newest durable entries
	// (their Data plus entryOverhead each): enough that a follower which
	// was down for a while, or a member applying what it just received, is
	// served from memory, as etcd serves its whole log since the last
	// snapshot.
	viewBytes     = 32 << 20
	entryOverhead = 64
	// readBudget and readBudgetEntries bound what the core reads from the
	// storage itself (below the view) per loop iteration; past them each
	// read returns a single entry. A storage read costs a bolt transaction
	// and a decode per entry: reading megabytes for a lagging follower in
	// one step stalled the leader's loop for seconds, and with it its
	// heartbeats, which set off elections.
	readBudget        = 1 << 20
	readBudgetEntries = 256
)

// logView is the core's read view of the durable log (raft.Storage). It
// answers the core's frequent questions — the first and last index, the
// terms and entries just written — from memory, because the storage takes
// its lock for the whole of a Save: reading through it while the writer
// works would stall the loop for the fsyncs the writer exists to hide.
// Older entries are read from the storage.
//
// The view is owned by the loop goroutine. It moves only when the loop
// learns that a write is durable, which is also when the core does
// (AdvanceWrite), so the two agree on what is durable: the core reads
// storage only below its unstable entries, and those are exactly the view's.
//
// The first index may lag the storage's after a compaction (which runs on
// another goroutine): asking for an entry the storage compacted meanwhile
// gets raft.ErrCompacted from the storage, as when the compaction lands just
// after the core's check — the core sends a snapshot instead.
type logView struct {
	st    Storage
	first uint64
	last  uint64
	ents  []raft.Entry // the newest durable entries: ents[k].Index == ents[0].Index+k, ending at last
	bytes int          // of ents, counted as len(Data)+entryOverhead
	// budget and budgetEntries are what is left of readBudget and
	// readBudgetEntries in this loop iteration.
	budget, budgetEntries int
}

func newLogView(st Storage) (*logView, error) {
	// No budget until the loop runs: the core reads the log at start.
	v := &logView{st: st, budget: math.MaxInt, budgetEntries: math.MaxInt}
	if err := v.reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// reload forgets what the view holds and reads the storage's bounds again,
// after the log was replaced (a snapshot installed).
func (v *logView) reload() error {
	first, err := v.st.FirstIndex()
	if err != nil {
		return fmt.Errorf("node: storage first index: %w", err)
	}
	last, err := v.st.LastIndex()
	if err != nil {
		return fmt.Errorf("node: storage last index: %w", err)
	}
	v.first, v.last, v.ents, v.bytes = first, last, nil, 0
	return nil
}

func entryBytes(e *raft.Entry) int { return len(e.Data) + entryOverhead }

// newIteration renews the storage read budget: the loop calls it before
// each iteration.
func (v *logView) newIteration() { v.budget, v.budgetEntries = readBudget, readBudgetEntries }

// written records entries that are now durable: they replace the view's
// entries from their first index on.
func (v *logView) written(ents []raft.Entry) {
	if len(ents) == 0 {
		return
	}
	lo := ents[0].Index
	if n := len(v.ents); n > 0 {
		switch first := v.ents[0].Index; {
		case lo <= first:
			v.drop(n)
		case lo <= v.ents[n-1].Index+1:
			v.truncate(int(lo - first))
		default:
			v.drop(n) // a gap: cannot happen, but never keep a hole
		}
	}
	v.ents = append(v.ents, ents...)
	for i := range ents {
		v.bytes += entryBytes(&ents[i])
	}
	k := 0
	for k < len(v.ents)-1 && v.bytes > viewBytes {
		v.bytes -= entryBytes(&v.ents[k])
		k++
	}
	if k > 0 {
		// Re-slicing leaves the dropped prefix to the next reallocation,
		// which copies only what is live; clear lets its Data go now.
		clear(v.ents[:k])
		v.ents = v.ents[k:]
	}
	v.last = ents[len(ents)-1].Index
}

// drop forgets the first k entries, releasing their Data.
func (v *logView) drop(k int) {
	for i := range v.ents[:k] {
		v.bytes -= entryBytes(&v.ents[i])
	}
	clear(v.ents[:k])
	v.ents = v.ents[k:]
	if len(v.ents) == 0 {
		v.ents, v.bytes = nil, 0
	}
}

// truncate keeps the first k entries. Readers got copies, so the array is
// reused.
func (v *logView) truncate(k int) {
	for i := range v.ents[k:] {
		v.bytes -= entryBytes(&v.ents[k+i])
	}
	clear(v.ents[k:])
	v.ents = v.ents[:k]
}

// compacted raises the first index to what the storage reported.
func (v *logView) compacted(first uint64) {
	v.first = max(v.first, first)
}

func (v *logView) cached(i uint64) (raft.Entry, bool) {
	if len(v.ents) == 0 || i < v.ents[0].Index || i > v.last {
		return raft.Entry{}, false
	}
	return v.ents[i-v.ents[0].Index], true
}

// InitialState implements raft.Storage.
func (v *logView) InitialState() (raft.HardState, raft.SnapshotMeta, error) {
	return v.st.InitialState()
}

// Entries implements raft.Storage: from memory when the view holds them,
// else from the storage within the iteration's read budget. Either way it
// may return fewer entries than maxSize allows, which the core takes as a
// size limit (it asks again from where the answer ended).
func (v *logView) Entries(lo, hi, maxSize uint64) ([]raft.Entry, error) {
	if lo >= hi || hi > v.last+1 {
		return v.st.Entries(lo, hi, maxSize) // nothing, or an error
	}
	if len(v.ents) > 0 && lo >= v.ents[0].Index {
		src := v.ents[lo-v.ents[0].Index : hi-v.ents[0].Index]
		// The storage's accounting: len(Data)+32 per entry, at least one.
		var size uint64
		n := 0
		for ; n < len(src); n++ {
			if size += uint64(len(src[n].Data)) + 32; n > 0 && size > maxSize {
				break
			}
		}
		// A copy: the core and the messages it builds keep what they are
		// given, and the view's array is reused.
		return append([]raft.Entry(nil), src[:n]...), nil
	}
	if len(v.ents) > 0 && hi > v.ents[0].Index {
		hi = v.ents[0].Index // the rest comes from memory on the next call
	}
	if v.budget <= 0 || v.budgetEntries <= 0 {
		maxSize, hi = 0, lo+1 // one entry
	} else {
		maxSize = min(maxSize, uint64(v.budget))
		hi = min(hi, lo+uint64(v.budgetEntries))
	}
	ents, err := v.st.Entries(lo, hi, maxSize)
	for i := range ents {
		v.budget -= entryBytes(&ents[i])
	}
	v.budgetEntries -= len(ents)
	return ents, err
}

// Term implements raft.Storage.
func (v *logView) Term(i uint64) (uint64, error) {
	if e, ok := v.cached(i); ok {
		return e.Term, nil
	}
	return v.st.Term(i)
}

// FirstIndex implements raft.Storage.
func (v *logView) FirstIndex() (uint64, error) { return v.first, nil }

// LastIndex implements raft.Storage.
func (v *logView) LastIndex() (uint64, error) { return v.last, nil }

// Snapshot implements raft.Storage.
func (v *logView) Snapshot() (raft.Snapshot, error) { return v.st.Snapshot() }
