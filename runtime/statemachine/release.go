package statemachine

// Tracker records which log entries still hold state ("live"). Log
// cleaning may drop any entry that is not live; replaying the live entries
// in index order must rebuild the state machine.
type Tracker struct {
	live map[uint64]struct{}
	// refs counts, for entries shared by several holders (a KeepAlive entry
	// that is the latest keep-alive of many sessions), how many still hold it.
	refs map[uint64]int
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{live: map[uint64]struct{}{}, refs: map[uint64]int{}}
}

// Hold marks index live (once more, for shared entries).
func (t *Tracker) Hold(index uint64) {
	t.live[index] = struct{}{}
	t.refs[index]++
}

// Release drops one hold on index; the entry stops being live when no hold
// remains. Releasing an entry that is not live does nothing.
func (t *Tracker) Release(index uint64) {
	n, ok := t.refs[index]
	if !ok {
		return
	}
	if n <= 1 {
		delete(t.refs, index)
		delete(t.live, index)
		return
	}
	t.refs[index] = n - 1
}

// Live reports whether index holds state.
func (t *Tracker) Live(index uint64) bool {
	_, ok := t.live[index]
	return ok
}

// Count returns the number of live entries.
func (t *Tracker) Count() int { return len(t.live) }
