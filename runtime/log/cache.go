package log

import "github.com/copycat-go/copycat/runtime/raft"

// cache holds up to max of the most recent entries, contiguous and ending at
// the log's last stored entry, so the hot path (the leader replicating what
// it just appended, followers that keep up) never reads bolt. Entries share
// their Data with what Save was given.
type cache struct {
	max  int
	ents []raft.Entry // ents[k].Index == ents[0].Index+k
}

func (c *cache) get(i uint64) (raft.Entry, bool) {
	if len(c.ents) == 0 || i < c.ents[0].Index || i-c.ents[0].Index >= uint64(len(c.ents)) {
		return raft.Entry{}, false
	}
	return c.ents[i-c.ents[0].Index], true
}

// truncateFrom drops the entries at and above i.
func (c *cache) truncateFrom(i uint64) {
	switch {
	case len(c.ents) == 0:
	case i <= c.ents[0].Index:
		c.reset()
	case i-c.ents[0].Index < uint64(len(c.ents)):
		clear(c.ents[i-c.ents[0].Index:]) // release Data
		c.ents = c.ents[:i-c.ents[0].Index]
	}
}

// dropBelow drops the entries below i.
func (c *cache) dropBelow(i uint64) {
	if len(c.ents) == 0 || i <= c.ents[0].Index {
		return
	}
	if n := i - c.ents[0].Index; n < uint64(len(c.ents)) {
		c.ents = c.ents[n:]
	} else {
		c.reset()
	}
}

// append adds ents, which follow the cached ones (the caller truncated
// first); if they do not, the cache restarts with them.
func (c *cache) append(ents []raft.Entry) {
	if len(ents) == 0 {
		return
	}
	if n := len(c.ents); n > 0 && c.ents[n-1].Index+1 != ents[0].Index {
		c.reset()
	}
	if len(ents) >= c.max {
		c.ents = append([]raft.Entry(nil), ents[len(ents)-c.max:]...)
		return
	}
	c.ents = append(c.ents, ents...)
	if n := len(c.ents); n > c.max {
		// Re-slicing leaves the dropped prefix to the next reallocation,
		// which copies only what is live: amortized O(1) per entry and at
		// most about twice max entries held.
		c.ents = c.ents[n-c.max:]
	}
}

func (c *cache) reset() { c.ents = nil }
