package raft

import "fmt"

// ProgressState is how the leader replicates to one follower.
type ProgressState uint8

const (
	// StateProbe: the leader does not know where the follower's log matches; it
	// sends one append per heartbeat interval and waits for the answer.
	StateProbe ProgressState = iota
	// StateReplicate: the logs match up to Match; appends are pipelined up to
	// the in-flight limits.
	StateReplicate
	// StateSnapshot: the follower needs state from before the compaction point;
	// appends stop until the driver reports the snapshot done.
	StateSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case StateProbe:
		return "probe"
	case StateReplicate:
		return "replicate"
	case StateSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("ProgressState(%d)", uint8(s))
}

// Progress is the leader's view of one member's log.
type Progress struct {
	Match, Next uint64
	State       ProgressState
	// PendingSnapshot is the compaction index sent while in StateSnapshot.
	PendingSnapshot uint64
	// snapshotSince is the tick the snapshot was sent at.
	snapshotSince uint64
	// RecentActive is set by any message from the member and cleared at each
	// check-quorum round.
	RecentActive bool
	// probeSent pauses a probing follower until it answers or a heartbeat is due.
	probeSent bool
	// sentCommit is the highest commit index sent to the member, so that an
	// acknowledgement that arrives after the commit broadcast is answered
	// with the commit index instead of waiting for the next heartbeat.
	sentCommit uint64
	// readAck is the highest heartbeat round the member acknowledged in this term.
	readAck  uint64
	inflight inflights
}

func (p *Progress) becomeProbe() {
	if p.State == StateSnapshot {
		p.Next = max(p.Match+1, p.PendingSnapshot+1)
	} else {
		p.Next = p.Match + 1
	}
	p.State = StateProbe
	p.PendingSnapshot = 0
	p.probeSent = false
	p.inflight.reset()
}

func (p *Progress) becomeReplicate() {
	p.State = StateReplicate
	p.Next = p.Match + 1
	p.probeSent = false
	p.inflight.reset()
}

func (p *Progress) becomeSnapshot(index uint64) {
	p.State = StateSnapshot
	p.PendingSnapshot = index
	p.probeSent = false
	p.inflight.reset()
}

// maybeUpdate records an acknowledgement of index n.
func (p *Progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.Match < n {
		p.Match = n
		updated = true
		p.probeSent = false
	}
	p.Next = max(p.Next, n+1)
	return updated
}

// sentEntries records an append carrying entries up to last (bytes in total).
func (p *Progress) sentEntries(last uint64, bytes uint64, hasEntries bool) {
	switch p.State {
	case StateReplicate:
		if hasEntries {
			p.Next = last + 1
			p.inflight.add(last, bytes)
		}
	case StateProbe:
		p.probeSent = true
	}
}

// maybeDecrTo handles a rejection of the append at rejected; next is the
// index after the leader's best guess of the match. It reports whether the
// rejection was news (not a stale answer).
func (p *Progress) maybeDecrTo(rejected, next uint64) bool {
	if p.State == StateReplicate {
		if rejected <= p.Match {
			return false // stale
		}
		p.Next = p.Match + 1
		return true
	}
	if p.Next-1 != rejected {
		return false // stale: not the probe we sent
	}
	p.Next = max(min(rejected, next), p.Match+1)
	p.probeSent = false
	return true
}

// isPaused reports whether the leader must hold appends to this member.
func (p *Progress) isPaused() bool {
	switch p.State {
	case StateProbe:
		return p.probeSent
	case StateReplicate:
		return p.inflight.full()
	default:
		return true
	}
}

func (p *Progress) String() string {
	return fmt.Sprintf("%s match=%d next=%d inflight=%d", p.State, p.Match, p.Next, p.inflight.count())
}

// inflights bounds the appends in flight to a follower, in messages and
// bytes, freeing them as acknowledgements arrive.
type inflights struct {
	maxCount int
	maxBytes uint64
	// ring buffer of (last index, bytes) of appends in flight
	buf   []inflight
	start int
	n     int
	bytes uint64
}

type inflight struct {
	index uint64
	bytes uint64
}

func newInflights(maxCount int, maxBytes uint64) inflights {
	return inflights{maxCount: maxCount, maxBytes: maxBytes}
}

func (in *inflights) add(index, bytes uint64) {
	if in.n == len(in.buf) {
		size := max(4, min(2*len(in.buf), in.maxCount))
		if in.n >= size { // full by count: callers check full() first
			size = in.n + 1
		}
		nb := make([]inflight, size)
		for i := 0; i < in.n; i++ {
			nb[i] = in.buf[(in.start+i)%len(in.buf)]
		}
		in.buf, in.start = nb, 0
	}
	in.buf[(in.start+in.n)%len(in.buf)] = inflight{index, bytes}
	in.n++
	in.bytes += bytes
}

// freeLE frees the appends whose last index is at or below index.
func (in *inflights) freeLE(index uint64) {
	for in.n > 0 {
		f := in.buf[in.start]
		if f.index > index {
			break
		}
		in.bytes -= f.bytes
		in.start = (in.start + 1) % len(in.buf)
		in.n--
	}
	if in.n == 0 {
		in.start = 0
	}
}

func (in *inflights) full() bool {
	return in.n >= in.maxCount || (in.maxBytes > 0 && in.bytes >= in.maxBytes)
}

func (in *inflights) count() int { return in.n }

func (in *inflights) reset() { in.n, in.start, in.bytes = 0, 0, 0 }

// freeFirst frees the oldest append in flight.
func (in *inflights) freeFirst() {
	if in.n > 0 {
		in.freeLE(in.buf[in.start].index)
	}
}
