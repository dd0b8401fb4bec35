package raft

// SoftState is volatile state worth telling the driver about: who leads and
// what this member is. It need not be persisted.
type SoftState struct {
	Lead  uint64
	State StateType
}

// Ready is the work the core hands to its driver. The driver must, in order:
//  1. send Messages (they may go out at once, in parallel with step 2);
//  2. install Snapshot if set, then persist HardState and Entries, durably;
//  3. send MessagesAfterSave;
//  4. apply CommittedEntries and answer ReadStates once applied far enough;
//  5. call Advance(rd).
//
// With Config.AsyncStorageWrites the driver may instead hand steps 2 and 3
// to a writer that persists Readys in the order they were handed out, call
// Ready again meanwhile, apply CommittedEntries at once (they are durable
// here already) and report each half on its own: AdvanceApply(rd) once the
// entries are applied, AdvanceWrite(rd) once rd's write is durable and its
// MessagesAfterSave are sent — for every Ready, in the order handed out.
type Ready struct {
	// SoftState is set when the leader or this member's role changed.
	SoftState *SoftState
	// HardState is set (non-empty) when it changed. Term and Vote must be
	// durable before MessagesAfterSave are sent; Commit may be saved lazily.
	HardState HardState
	// Snapshot, when set, is a compaction point from the leader that this
	// member's log ends below: its state must be replaced with the state at
	// that point (the driver fetches it) before Entries are saved.
	Snapshot *Snapshot
	// Entries are to be appended to storage; if the first one is at or
	// below the last stored index, the stored suffix from there is replaced.
	Entries []Entry
	// CommittedEntries are to be applied, in order. Without asynchronous
	// storage writes they may include entries of this same Ready's Entries,
	// so apply after saving.
	CommittedEntries []Entry
	// Messages may be sent at once.
	Messages []Message
	// MessagesAfterSave may be sent only once HardState and Entries are
	// durable, and those of every earlier Ready.
	MessagesAfterSave []Message
	// ReadStates answer ReadIndex and LeaseRead calls.
	ReadStates []ReadState
}

// HasReady reports whether Ready would hand out any work.
func (r *Raft) HasReady() bool {
	if r.state == StateLeader && (r.reads.bcastPending || r.appendPending) {
		return true
	}
	return r.softState() != r.prevSoft ||
		r.hardState() != r.prevHard ||
		r.log.unstable.nextSnapshot() != nil ||
		len(r.log.unstable.nextEntries()) > 0 ||
		r.log.hasNextApply() ||
		len(r.msgs) > 0 || len(r.msgsAfterSave) > 0 ||
		len(r.readStates) > 0
}

// Ready returns the pending work and marks it handed out; call Advance once
// it is done (or AdvanceWrite and AdvanceApply). Between Ready and Advance
// the driver may still Step and Tick.
func (r *Raft) Ready() Ready {
	if r.state == StateLeader {
		if r.appendPending {
			r.appendPending = false
			r.bcastAppend()
		}
		if r.reads.bcastPending {
			r.bcastHeartbeat()
		}
	}
	rd := Ready{
		Entries:           r.log.unstable.nextEntries(),
		Snapshot:          r.log.unstable.nextSnapshot(),
		Messages:          r.msgs,
		MessagesAfterSave: r.msgsAfterSave,
		ReadStates:        r.readStates,
	}
	r.log.unstable.acceptInProgress()
	if ss := r.softState(); ss != r.prevSoft {
		rd.SoftState = &ss
		r.prevSoft = ss
	}
	if hs := r.hardState(); hs != r.prevHard {
		rd.HardState = hs
		r.prevHard = hs
	}
	if ents := r.log.nextApply(); len(ents) > 0 {
		rd.CommittedEntries = ents
		r.log.applying = ents[len(ents)-1].Index
	}
	r.msgs, r.msgsAfterSave, r.readStates = nil, nil, nil
	return rd
}

// Advance tells the core that the work in rd is done: its entries and hard
// state are durable and its committed entries applied.
func (r *Raft) Advance(rd Ready) {
	r.AdvanceApply(rd)
	r.AdvanceWrite(rd)
}

// AdvanceApply tells the core that rd's committed entries are applied.
func (r *Raft) AdvanceApply(rd Ready) {
	if n := len(rd.CommittedEntries); n > 0 {
		r.log.applied = max(r.log.applied, rd.CommittedEntries[n-1].Index)
	}
}

// AdvanceWrite tells the core that rd's snapshot, entries and hard state are
// durable (and its MessagesAfterSave sent). With asynchronous storage writes
// Readys must be reported in the order they were handed out.
//
// A leader counts itself towards a quorum only from here: followers'
// acknowledgements may commit an entry while the leader's own write of it is
// still in flight — a quorum of durable copies exists without it, which is
// all §5.4 asks — but its own copy counts only once it is durable, or a
// leader that crashed mid-write would have counted a copy that never was.
func (r *Raft) AdvanceWrite(rd Ready) {
	progressed := false
	if !rd.HardState.IsEmpty() {
		if !sameVote(rd.HardState, r.savedHard) {
			progressed = true
		}
		r.savedHard = rd.HardState
	}
	if rd.Snapshot != nil {
		r.log.unstable.stableSnapTo(rd.Snapshot.Meta.Index)
		idx := rd.Snapshot.Meta.Index
		r.log.applied = max(r.log.applied, idx)
		r.log.applying = max(r.log.applying, idx)
		progressed = true
	}
	if n := len(rd.Entries); n > 0 {
		last := rd.Entries[n-1]
		r.log.unstable.stableTo(last.Index, last.Term)
		progressed = true
	}
	if progressed {
		r.unsavedSince = noTick
		if r.hasUnsaved() {
			r.unsavedSince = r.ticks
		}
	}
	if r.state == StateLeader {
		// The leader acknowledges its own entries only once they are durable.
		if pr := r.prs[r.id]; pr != nil && pr.maybeUpdate(r.savedIndex()) {
			if r.maybeCommit() {
				r.commitAdvanced()
			}
		}
	}
}

// Status is a snapshot of the core's state for observers.
type Status struct {
	ID             uint64
	Group          uint64
	HardState      HardState
	SoftState      SoftState
	Applied        uint64
	LastIndex      uint64
	FirstIndex     uint64
	Config         Configuration
	LeadTransferee uint64
	LeaseValid     bool
	// Progress is set on the leader: a copy per member.
	Progress map[uint64]Progress
}

// Term returns the current term.
func (r *Raft) Term() uint64 { return r.term }

// BasicStatus returns the core's state without the per-member progress,
// which is cheap enough to take after every Ready.
func (r *Raft) BasicStatus() Status {
	return Status{
		ID:             r.id,
		Group:          r.cfg.Group,
		HardState:      r.hardState(),
		SoftState:      r.softState(),
		Applied:        r.log.applied,
		LastIndex:      r.log.lastIndex(),
		FirstIndex:     r.log.firstIndex(),
		Config:         r.config().Clone(),
		LeadTransferee: r.leadTransferee,
		LeaseValid:     r.leaseValid(),
	}
}

// Status returns the core's current state, with a copy of each member's
// progress on the leader.
func (r *Raft) Status() Status {
	s := Status{
		ID:             r.id,
		Group:          r.cfg.Group,
		HardState:      r.hardState(),
		SoftState:      r.softState(),
		Applied:        r.log.applied,
		LastIndex:      r.log.lastIndex(),
		FirstIndex:     r.log.firstIndex(),
		Config:         r.config().Clone(),
		LeadTransferee: r.leadTransferee,
		LeaseValid:     r.leaseValid(),
	}
	if r.state == StateLeader {
		s.Progress = make(map[uint64]Progress, len(r.prs))
		for id, pr := range r.prs {
			p := *pr
			p.inflight = inflights{}
			s.Progress[id] = p
		}
	}
	return s
}
