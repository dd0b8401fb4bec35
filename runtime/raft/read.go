package raft

import "slices"

// readTracker confirms leadership for ReadIndex requests and keeps the
// leader's lease (§6.4, §6.4.1).
//
// Every heartbeat broadcast is a round with a fresh, increasing sequence
// number; followers echo it. A request registered before round s was sent is
// confirmed once a quorum of voters has acknowledged a round >= s. Because a
// round's number is never reused within a term and acknowledgements from
// other terms are refused by the term check, an old acknowledgement can never
// confirm a newer request (the mistake behind etcd#20418 was to reuse a
// request context across attempts).
type readTracker struct {
	seq uint64 // last round started
	// rounds are the unconfirmed rounds with the tick each was sent at, so
	// that a quorum acknowledgement of round s renews the lease from that tick.
	rounds []round
	// pending requests, in sequence order, waiting for their round.
	pending []readRequest
	// waiting requests arrived before the leader committed an entry of its
	// term; they cannot be given a read index yet.
	waiting []readRequest
	// bcastPending asks for a heartbeat round at the next Ready, so that
	// many reads between two Readys share one round.
	bcastPending bool
	// leaseStart is the send tick of the newest round a quorum acknowledged.
	leaseStart uint64
	hasLease   bool
}

type round struct {
	seq  uint64
	tick uint64
}

type readRequest struct {
	seq   uint64
	index uint64
	ctx   uint64
	from  uint64
}

const maxRounds = 1024

func newReadTracker() readTracker { return readTracker{} }

// reset forgets the requests and the lease of a term that ended. The round
// sequence keeps increasing across terms.
func (t *readTracker) reset() {
	t.rounds = nil
	t.pending = nil
	t.waiting = nil
	t.bcastPending = false
	t.hasLease = false
}

func (t *readTracker) newRound(tick uint64) uint64 {
	t.seq++
	t.rounds = append(t.rounds, round{seq: t.seq, tick: tick})
	if len(t.rounds) > maxRounds {
		// Nobody answers (a partitioned leader without check-quorum): keep
		// the newest; requests still wait for a newer acknowledged round.
		t.rounds = slices.Delete(t.rounds, 0, len(t.rounds)-maxRounds)
	}
	t.bcastPending = false
	return t.seq
}

// releaseWaiting gives the requests that waited for the first commit of the
// term their read index now.
func (t *readTracker) releaseWaiting(r *Raft) {
	w := t.waiting
	t.waiting = nil
	for _, req := range w {
		r.startRead(req.from, req.ctx)
	}
}

// ReadIndex asks for a linearizable read (§6.4): a ReadState with ctx comes
// out of Ready once this member's leader has confirmed it still leads; the
// read may run once the state machine has applied ReadState.Index. On a
// follower the request goes to the leader. Each call is a fresh request.
func (r *Raft) ReadIndex(ctx uint64) error {
	return r.readIndex(r.id, ctx)
}

func (r *Raft) readIndex(from, ctx uint64) error {
	switch {
	case r.state == StateLeader:
		if !r.committedInTerm {
			r.reads.waiting = append(r.reads.waiting, readRequest{ctx: ctx, from: from})
			return nil
		}
		r.startRead(from, ctx)
		return nil
	case from == r.id && r.lead != 0:
		r.send(Message{Type: MsgReadIndex, To: r.lead, Context: ctx})
		return nil
	}
	return ErrNotLeader
}

func (r *Raft) startRead(from, ctx uint64) {
	req := readRequest{seq: r.reads.seq + 1, index: r.log.committed, ctx: ctx, from: from}
	if r.quorum() == 1 && r.config().IsVoter(r.id) {
		r.answerRead(req)
		return
	}
	r.reads.pending = append(r.reads.pending, req)
	r.reads.bcastPending = true
}

func (r *Raft) answerRead(req readRequest) {
	if req.from == r.id {
		r.readStates = append(r.readStates, ReadState{Index: req.index, Context: req.ctx})
		return
	}
	r.send(Message{Type: MsgReadIndexResp, To: req.from, Index: req.index, Context: req.ctx})
}

// advanceReads answers the requests and renews the lease up to the newest
// round a quorum of voters acknowledged.
func (r *Raft) advanceReads() {
	voters := r.config().Voters()
	acks := make([]uint64, 0, len(voters))
	for _, id := range voters {
		if id == r.id {
			acks = append(acks, r.reads.seq)
		} else if pr := r.prs[id]; pr != nil {
			acks = append(acks, pr.readAck)
		} else {
			acks = append(acks, 0)
		}
	}
	slices.Sort(acks)
	acked := acks[len(acks)-r.quorum()]
	t := &r.reads
	i := 0
	for i < len(t.rounds) && t.rounds[i].seq <= acked {
		t.leaseStart, t.hasLease = t.rounds[i].tick, true
		i++
	}
	t.rounds = t.rounds[i:]
	j := 0
	for j < len(t.pending) && t.pending[j].seq <= acked {
		r.answerRead(t.pending[j])
		j++
	}
	t.pending = t.pending[j:]
}

// leaseValid reports whether the leader holds a lease: a quorum acknowledged
// a heartbeat sent less than ElectionTick - LeaseMarginTick ticks ago. Those
// voters refuse to elect anyone else until ElectionTick after they heard it,
// so no other leader can exist yet (§6.4.1).
func (r *Raft) leaseValid() bool {
	if r.state != StateLeader || r.cfg.DisableCheckQuorum || r.leadTransferee != 0 || r.timeoutNowSent || !r.committedInTerm {
		return false
	}
	if r.quorum() == 1 && r.config().IsVoter(r.id) {
		return true
	}
	return r.reads.hasLease && r.ticks < r.reads.leaseStart+uint64(r.cfg.ElectionTick-r.cfg.LeaseMarginTick)
}

// LeaseRead answers a read from the leader's lease without a round trip when
// the lease is valid, and falls back to ReadIndex otherwise. Lease reads need
// check-quorum and bounded clock drift between members.
func (r *Raft) LeaseRead(ctx uint64) error {
	if r.leaseValid() {
		r.readStates = append(r.readStates, ReadState{Index: r.log.committed, Context: ctx})
		return nil
	}
	return r.ReadIndex(ctx)
}
