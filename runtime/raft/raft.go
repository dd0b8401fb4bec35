package raft

import (
	"fmt"
	"slices"
)

// StateType is a member's role.
type StateType uint8

const (
	StateFollower StateType = iota
	StatePreCandidate
	StateCandidate
	StateLeader
)

func (s StateType) String() string {
	switch s {
	case StateFollower:
		return "follower"
	case StatePreCandidate:
		return "pre-candidate"
	case StateCandidate:
		return "candidate"
	case StateLeader:
		return "leader"
	}
	return fmt.Sprintf("StateType(%d)", uint8(s))
}

// campaignTransfer marks the vote requests of a leadership transfer
// (Message.Context): voters grant them even while they still hear from the
// old leader, because the old leader asked for it (§3.10).
const campaignTransfer = 1

const noTick = ^uint64(0)

// Raft is one member's consensus core. It is not safe for concurrent use:
// one driver goroutine calls all its methods.
type Raft struct {
	id  uint64
	cfg Config

	term  uint64
	vote  uint64
	state StateType
	lead  uint64
	log   *raftLog

	// configs holds the configuration entries from the newest committed one
	// (configs[0]) to the newest appended one (the current configuration).
	configs []Configuration

	prs   map[uint64]*Progress // leader only
	votes map[uint64]bool      // candidates only

	msgs          []Message
	msgsAfterSave []Message
	readStates    []ReadState

	ticks                     uint64
	electionElapsed           int
	heartbeatElapsed          int
	randomizedElectionTimeout int
	// restartLeaseUntil: a member restarting with a term past the bootstrap
	// term may have acknowledged a leader whose lease still runs; it refuses
	// votes until this tick, as if it had just heard from that leader.
	restartLeaseUntil uint64

	leadTransferee uint64
	// appendPending defers the broadcast of proposed entries to the next
	// Ready, so that everything proposed in between goes out in one append
	// per follower (batching).
	appendPending bool
	// committedInTerm is set once the leader has committed an entry of its
	// own term; reads and configuration changes wait for it.
	committedInTerm bool

	reads readTracker

	savedHard HardState // the hard state last reported durable (Advance, AdvanceWrite)
	prevHard  HardState // the hard state last handed out by Ready
	prevSoft  SoftState
	// unsavedSince is the tick at which the core last saw persistence make
	// progress while work was pending, or noTick if nothing is pending.
	unsavedSince uint64
	// timeoutNowSent records that this leader told a member to campaign at
	// once in this term: that member may win votes despite their leases for
	// as long as the term lasts, so this leader's lease is void until then.
	timeoutNowSent bool
}

// New returns a core that starts from cfg.Storage's state as a follower.
func New(cfg Config) (*Raft, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hs, meta, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raft: initial state: %w", err)
	}
	log, err := newRaftLog(cfg.Storage, cfg.MaxApplySize, !cfg.AsyncStorageWrites)
	if err != nil {
		return nil, err
	}
	r := &Raft{
		id:           cfg.ID,
		cfg:          cfg,
		log:          log,
		unsavedSince: noTick,
		reads:        newReadTracker(),
	}
	r.configs = []Configuration{meta.Config.Clone()}
	r.configs[0].Index, r.configs[0].Term = meta.Index, meta.Term
	if err := r.loadConfigs(); err != nil {
		return nil, err
	}
	if hs.Commit > r.log.lastIndex() {
		return nil, fmt.Errorf("raft: saved commit %d is beyond the last index %d", hs.Commit, r.log.lastIndex())
	}
	if hs.Commit > r.log.committed {
		r.log.commitTo(hs.Commit)
	}
	r.becomeFollower(hs.Term, 0)
	r.vote = hs.Vote
	r.savedHard = r.hardState()
	r.prevHard = r.savedHard
	r.prevSoft = r.softState()
	if hs.Term > 1 && !cfg.DisableCheckQuorum {
		r.restartLeaseUntil = uint64(cfg.ElectionTick)
	}
	r.pruneConfigs()
	return r, nil
}

// loadConfigs scans the log above the compaction point for configuration
// entries: they take effect on append, committed or not.
func (r *Raft) loadConfigs() error {
	lo, hi := r.log.firstIndex(), r.log.lastIndex()+1
	for lo < hi {
		ents, err := r.log.slice(lo, hi, 8<<20)
		if err != nil {
			return fmt.Errorf("raft: scan log for configurations: %w", err)
		}
		for _, e := range ents {
			if e.Type == EntryConfig {
				if err := r.pushConfig(e); err != nil {
					return err
				}
			}
		}
		lo = ents[len(ents)-1].Index + 1
	}
	return nil
}

func (r *Raft) config() *Configuration { return &r.configs[len(r.configs)-1] }

func (r *Raft) pushConfig(e Entry) error {
	c, err := DecodeConfiguration(e.Data)
	if err != nil {
		return fmt.Errorf("raft: configuration entry %d: %w", e.Index, err)
	}
	c.Index, c.Term = e.Index, e.Term
	r.configs = append(r.configs, c)
	r.syncProgress()
	return nil
}

// truncateConfigs drops configurations whose entries were replaced from index on.
func (r *Raft) truncateConfigs(index uint64) {
	n := len(r.configs)
	for n > 1 && r.configs[n-1].Index >= index {
		n--
	}
	if n != len(r.configs) {
		r.configs = r.configs[:n]
		r.syncProgress()
	}
}

// pruneConfigs keeps only the newest committed configuration and those after it.
func (r *Raft) pruneConfigs() {
	i := 0
	for i+1 < len(r.configs) && r.configs[i+1].Index <= r.log.committed {
		i++
	}
	if i > 0 {
		r.configs = slices.Clone(r.configs[i:])
	}
}

// promotable reports whether this member may campaign: it is a voter in its
// latest configuration or, while that one is uncommitted, in the newest
// committed one. The second case matters when a leader demotes or removes
// itself and loses leadership before the change commits: it may hold the only
// copy of the change, and the remaining voters cannot win without its vote,
// so it must be able to win their votes (counted under its latest
// configuration, whose quorums overlap the committed one's) and finish the
// change.
// savedIndex is the last index known durable in this member's log: what
// the driver reported saved and has not been replaced since.
func (r *Raft) savedIndex() uint64 {
	if r.log.unstable.snapshot != nil {
		return 0
	}
	return r.log.unstable.offset - 1
}

func (r *Raft) promotable() bool {
	return r.config().IsVoter(r.id) || (len(r.configs) > 1 && r.configs[0].IsVoter(r.id))
}

func (r *Raft) quorum() int { return len(r.config().Voters())/2 + 1 }

func (r *Raft) hardState() HardState {
	return HardState{Term: r.term, Vote: r.vote, Commit: r.log.committed}
}

func (r *Raft) softState() SoftState { return SoftState{Lead: r.lead, State: r.state} }

// send queues m, stamping it with this member's identity. A leader's
// appends, heartbeats, snapshots and TimeoutNow may leave before the Ready's
// own write completes (§10.2.1) once its term is durable; everything else
// waits for the save, because it vouches for persisted state.
func (r *Raft) send(m Message) {
	m.From = r.id
	m.Group = r.cfg.Group
	if m.Term == 0 {
		m.Term = r.term
	}
	if r.state == StateLeader && r.savedHard.Term == r.term {
		switch m.Type {
		case MsgApp, MsgHeartbeat, MsgSnap, MsgTimeoutNow, MsgReadIndexResp:
			r.msgs = append(r.msgs, m)
			return
		}
	}
	r.msgsAfterSave = append(r.msgsAfterSave, m)
}

// Tick advances the core's clock by one tick.
func (r *Raft) Tick() {
	r.ticks++
	if r.unsavedSince == noTick && r.hasUnsaved() {
		r.unsavedSince = r.ticks
	}
	if r.state == StateLeader {
		r.tickHeartbeat()
	} else {
		r.tickElection()
	}
}

func (r *Raft) tickElection() {
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout {
		r.electionElapsed = 0
		r.campaign(false)
	}
}

func (r *Raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.storageStalled() {
		// hashicorp/raft#612: heartbeats alone must not keep a leader whose
		// disk has stopped; step down so that a healthy member can lead.
		r.becomeFollower(r.term, 0)
		return
	}
	if r.electionElapsed >= r.cfg.ElectionTick {
		r.electionElapsed = 0
		if !r.cfg.DisableCheckQuorum && !r.quorumActive() {
			r.becomeFollower(r.term, 0)
			return
		}
		if r.leadTransferee != 0 {
			r.leadTransferee = 0 // the transfer timed out (§3.10)
		}
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTick {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
	}
}

func (r *Raft) hasUnsaved() bool {
	return len(r.log.unstable.entries) > 0 || r.log.unstable.snapshot != nil || !sameVote(r.hardState(), r.savedHard)
}

func sameVote(a, b HardState) bool { return a.Term == b.Term && a.Vote == b.Vote }

func (r *Raft) storageStalled() bool {
	return r.unsavedSince != noTick && r.ticks-r.unsavedSince >= uint64(r.cfg.ElectionTick)
}

// quorumActive reports whether a quorum of voters was heard from since the
// last check, and starts a new check period.
func (r *Raft) quorumActive() bool {
	active := 0
	for _, id := range r.config().Voters() {
		if id == r.id {
			active++
			continue
		}
		if pr := r.prs[id]; pr != nil && pr.RecentActive {
			active++
		}
	}
	for id, pr := range r.prs {
		if id != r.id {
			pr.RecentActive = false
		}
	}
	return active >= r.quorum()
}

func (r *Raft) resetRandomizedElectionTimeout() {
	r.randomizedElectionTimeout = r.cfg.ElectionTick + r.cfg.Rand.IntN(r.cfg.ElectionTick)
}

func (r *Raft) reset(term uint64) {
	if r.term != term {
		r.term = term
		r.vote = 0
	}
	r.lead = 0
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.leadTransferee = 0
	r.timeoutNowSent = false
	r.appendPending = false
	r.committedInTerm = false
	r.votes = nil
	r.prs = nil
	r.reads.reset()
}

func (r *Raft) becomeFollower(term, lead uint64) {
	r.reset(term)
	r.state = StateFollower
	r.lead = lead
}

func (r *Raft) becomePreCandidate() {
	// Pre-vote keeps the term: asking does not disrupt anyone (§9.6).
	r.state = StatePreCandidate
	r.lead = 0
	r.votes = map[uint64]bool{}
}

func (r *Raft) becomeCandidate() {
	r.reset(r.term + 1)
	r.vote = r.id
	r.state = StateCandidate
	r.votes = map[uint64]bool{}
}

func (r *Raft) becomeLeader() {
	r.reset(r.term)
	r.state = StateLeader
	r.lead = r.id
	r.prs = map[uint64]*Progress{}
	r.syncProgress()
	if pr := r.prs[r.id]; pr != nil {
		pr.Match = r.savedIndex()
	}
	// A NoOp of the new term lets the leader commit, and so learn the
	// commit index, without waiting for a client (§5.4.2, §6.4).
	r.appendEntries(Entry{Type: EntryNoOp, Timestamp: r.now()})
	r.appendPending = true
}

// syncProgress gives the leader a Progress for every member of the current
// configuration and drops those of removed members.
func (r *Raft) syncProgress() {
	if r.state != StateLeader {
		return
	}
	c := r.config()
	for _, m := range c.Members {
		if r.prs[m.ID] == nil {
			r.prs[m.ID] = &Progress{
				Next:         r.log.lastIndex() + 1,
				RecentActive: true,
				inflight:     newInflights(r.cfg.MaxInflightMsgs, r.cfg.MaxInflightBytes),
			}
		}
	}
	for id := range r.prs {
		if _, ok := c.Member(id); !ok {
			delete(r.prs, id)
		}
	}
}

func (r *Raft) now() int64 {
	if r.cfg.Now != nil {
		return r.cfg.Now()
	}
	last := r.log.lastIndex()
	if last < r.log.firstIndex() {
		return 0
	}
	ents, err := r.log.slice(last, last+1, 1)
	if err != nil || len(ents) == 0 {
		return 0
	}
	return ents[0].Timestamp
}

// campaign starts an election; pre-vote first unless disabled or this is a
// leadership transfer.
func (r *Raft) campaign(transfer bool) {
	if !r.promotable() {
		return
	}
	var voteMsg MessageType
	var term uint64
	if !r.cfg.DisablePreVote && !transfer {
		r.becomePreCandidate()
		voteMsg, term = MsgPreVote, r.term+1
	} else {
		r.becomeCandidate()
		voteMsg, term = MsgVote, r.term
	}
	if r.poll(r.id, true) == voteWon {
		if voteMsg == MsgPreVote {
			r.campaign(true)
		} else {
			r.becomeLeader()
		}
		return
	}
	var ctx uint64
	if transfer {
		ctx = campaignTransfer
	}
	for _, id := range r.config().Voters() {
		if id == r.id {
			continue
		}
		r.send(Message{Type: voteMsg, To: id, Term: term, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm(), Context: ctx})
	}
}

type voteResult uint8

const (
	votePending voteResult = iota
	voteWon
	voteLost
)

func (r *Raft) poll(id uint64, granted bool) voteResult {
	if !r.config().IsVoter(id) {
		return votePending
	}
	if _, ok := r.votes[id]; !ok {
		r.votes[id] = granted
	}
	yes, no := 0, 0
	for _, v := range r.config().Voters() {
		g, ok := r.votes[v]
		switch {
		case !ok:
		case g:
			yes++
		default:
			no++
		}
	}
	q := r.quorum()
	switch {
	case yes >= q:
		return voteWon
	case no > len(r.config().Voters())-q:
		return voteLost
	}
	return votePending
}

// Campaign makes this member start an election now (pre-vote first).
func (r *Raft) Campaign() { r.campaign(false) }

// Step feeds a message from a peer into the core.
func (r *Raft) Step(m Message) error {
	if m.To != r.id {
		return fmt.Errorf("raft: message for %d stepped into %d", m.To, r.id)
	}
	if !ValidMessageType(m.Type) {
		return fmt.Errorf("raft: unknown message type %d", m.Type)
	}
	if m.Type == MsgSnapChunk || m.Type == MsgSnapChunkResp {
		return fmt.Errorf("raft: %s is the driver's message, not the core's", m.Type)
	}
	switch {
	case m.Term > r.term:
		if m.Type == MsgVote || m.Type == MsgPreVote {
			if m.Context != campaignTransfer && r.inLease() {
				// We heard from a live leader within the election timeout:
				// this candidate cannot win without disrupting it (§4.2.3).
				return nil
			}
		}
		switch {
		case m.Type == MsgPreVote:
			// Never change term on a pre-vote.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// The term in a granted pre-vote is the one we would campaign in.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, 0)
		}
	case m.Term < r.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat:
			// A stale leader, perhaps back from a partition: tell it our term
			// so that it steps down. With pre-vote and check-quorum it never
			// hears a higher term otherwise.
			r.send(Message{Type: MsgAppResp, To: m.From})
		case MsgPreVote:
			r.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true})
		}
		return nil
	}

	switch m.Type {
	case MsgVote, MsgPreVote:
		canVote := r.vote == m.From ||
			(r.vote == 0 && r.lead == 0) ||
			(m.Type == MsgPreVote && m.Term > r.term)
		resp := voteRespType(m.Type)
		if canVote && r.log.isUpToDate(m.Index, m.LogTerm) {
			r.send(Message{Type: resp, To: m.From, Term: m.Term})
			if m.Type == MsgVote {
				r.electionElapsed = 0
				r.vote = m.From
			}
		} else {
			r.send(Message{Type: resp, To: m.From, Reject: true})
		}
		return nil
	}
	switch r.state {
	case StateLeader:
		r.stepLeader(m)
	case StateCandidate, StatePreCandidate:
		r.stepCandidate(m)
	default:
		r.stepFollower(m)
	}
	return nil
}

func voteRespType(t MessageType) MessageType {
	if t == MsgPreVote {
		return MsgPreVoteResp
	}
	return MsgVoteResp
}

// inLease reports whether this member believes a leader is alive, so that it
// refuses to help depose it.
func (r *Raft) inLease() bool {
	if r.cfg.DisableCheckQuorum {
		return false
	}
	if r.ticks < r.restartLeaseUntil {
		return true
	}
	return r.lead != 0 && r.electionElapsed < r.cfg.ElectionTick
}

func (r *Raft) stepLeader(m Message) {
	pr := r.prs[m.From]
	switch m.Type {
	case MsgAppResp:
		if pr == nil || (!m.Reject && m.Index > r.log.lastIndex()) {
			return // not a member, or acknowledges entries we never sent
		}
		pr.RecentActive = true
		if m.Reject {
			next := m.RejectHint + 1
			if m.LogTerm > 0 {
				idx, _ := r.log.findConflictByTerm(m.RejectHint, m.LogTerm)
				next = idx + 1
			}
			if pr.maybeDecrTo(m.Index, next) {
				if pr.State == StateReplicate {
					pr.becomeProbe()
				}
				r.sendAppend(m.From, true)
			}
			return
		}
		if pr.maybeUpdate(m.Index) {
			switch {
			case pr.State == StateProbe:
				pr.becomeReplicate()
			case pr.State == StateSnapshot && pr.Match >= pr.PendingSnapshot:
				pr.becomeProbe()
				pr.becomeReplicate()
			case pr.State == StateReplicate:
				pr.inflight.freeLE(m.Index)
			}
			if r.maybeCommit() {
				r.commitAdvanced()
			} else if !r.cfg.LazyCommit && pr.sentCommit < min(pr.Match, r.log.committed) {
				r.sendAppend(m.From, true)
			}
			for r.sendAppend(m.From, false) {
			}
			if m.From == r.leadTransferee && pr.Match == r.log.lastIndex() {
				r.sendTimeoutNow(m.From)
			}
		} else if pr.State == StateReplicate {
			pr.inflight.freeLE(m.Index)
		}
	case MsgHeartbeatResp:
		if pr == nil {
			return
		}
		pr.RecentActive = true
		pr.probeSent = false
		if pr.State == StateSnapshot && r.ticks-pr.snapshotSince >= uint64(r.cfg.ElectionTick) {
			// The member answers heartbeats but never acknowledged the
			// snapshot: it was lost. Probe again, which resends it if needed.
			pr.PendingSnapshot = 0
			pr.becomeProbe()
		}
		if pr.State == StateReplicate && pr.inflight.full() {
			// An acknowledged heartbeat proves the follower is alive; free one
			// slot so that replication resumes if acknowledgements were lost.
			pr.inflight.freeFirst()
		}
		if pr.Match < r.log.lastIndex() {
			r.sendAppend(m.From, true)
		}
		if r.config().IsVoter(m.From) && m.Context > pr.readAck && m.Context <= r.reads.seq {
			pr.readAck = m.Context
			r.advanceReads()
		}
	case MsgReadIndex:
		r.readIndex(m.From, m.Context)
	}
}

func (r *Raft) stepCandidate(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		r.becomeFollower(m.Term, m.From)
		r.stepFollower(m)
	case MsgPreVoteResp, MsgVoteResp:
		if (m.Type == MsgPreVoteResp) != (r.state == StatePreCandidate) {
			return
		}
		switch r.poll(m.From, !m.Reject) {
		case voteWon:
			if r.state == StatePreCandidate {
				r.campaign(true)
			} else {
				r.becomeLeader()
			}
		case voteLost:
			r.becomeFollower(r.term, 0)
		}
	}
}

func (r *Raft) stepFollower(m Message) {
	switch m.Type {
	case MsgApp:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleAppend(m)
	case MsgHeartbeat:
		r.electionElapsed = 0
		r.lead = m.From
		r.log.commitTo(min(m.Commit, r.log.lastIndex()))
		r.onCommit()
		r.send(Message{Type: MsgHeartbeatResp, To: m.From, Context: m.Context})
	case MsgSnap:
		r.electionElapsed = 0
		r.lead = m.From
		r.handleSnapshot(m)
	case MsgTimeoutNow:
		r.campaign(true)
	case MsgReadIndexResp:
		r.readStates = append(r.readStates, ReadState{Index: m.Index, Context: m.Context})
	}
}

// validAppend checks what no correct leader violates, so that a buggy or
// hostile peer cannot make the core panic: entries follow m.Index without
// gaps, their terms never decrease nor exceed the message's, and their
// configurations decode.
func validAppend(m Message) bool {
	prevTerm := m.LogTerm
	if prevTerm > m.Term {
		return false
	}
	for i, e := range m.Entries {
		if e.Index != m.Index+1+uint64(i) || e.Term < prevTerm || e.Term > m.Term {
			return false
		}
		if e.Type == EntryConfig {
			if _, err := DecodeConfiguration(e.Data); err != nil {
				return false
			}
		}
		prevTerm = e.Term
	}
	return true
}

func (r *Raft) handleAppend(m Message) {
	if !validAppend(m) {
		return
	}
	if m.Index < r.log.committed {
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
		return
	}
	last, ok, truncatedAt := r.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries)
	if !ok {
		hint, hintTerm := r.log.findConflictByTerm(min(m.Index, r.log.lastIndex()), m.LogTerm)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, RejectHint: hint, LogTerm: hintTerm})
		return
	}
	if truncatedAt > 0 {
		r.truncateConfigs(truncatedAt)
	}
	r.trackConfigs(m.Entries)
	r.onCommit()
	r.send(Message{Type: MsgAppResp, To: m.From, Index: last})
}

// trackConfigs takes configuration entries into effect as they are appended.
func (r *Raft) trackConfigs(ents []Entry) {
	for _, e := range ents {
		if e.Type == EntryConfig && e.Index > r.config().Index {
			if err := r.pushConfig(e); err != nil {
				// The leader encoded it; a decode failure is corruption.
				panic(err)
			}
		}
	}
}

func (r *Raft) handleSnapshot(m Message) {
	if m.Snapshot == nil {
		return
	}
	s := *m.Snapshot
	meta := s.Meta
	if meta.Index == 0 || meta.Index == ^uint64(0) || meta.Term > m.Term || len(meta.Config.Voters()) == 0 {
		return // no correct leader sends this
	}
	switch {
	case meta.Index <= r.log.committed:
	case r.log.matchTerm(meta.Index, meta.Term):
		// We already hold the entry: just fast-forward the commit index.
		r.log.commitTo(meta.Index)
		r.onCommit()
	default:
		s.Meta = cloneMeta(meta)
		r.log.restore(s)
		c := s.Meta.Config.Clone()
		c.Index, c.Term = meta.Index, meta.Term
		r.configs = []Configuration{c}
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.lastIndex()})
		return
	}
	r.send(Message{Type: MsgAppResp, To: m.From, Index: r.log.committed})
}

// maybeCommit advances the commit index to the highest index a quorum of
// voters has persisted, if that entry is of the current term (§5.4.2).
func (r *Raft) maybeCommit() bool {
	voters := r.config().Voters()
	matches := make([]uint64, 0, len(voters))
	for _, id := range voters {
		if pr := r.prs[id]; pr != nil {
			matches = append(matches, pr.Match)
		} else {
			matches = append(matches, 0)
		}
	}
	slices.Sort(matches)
	q := matches[len(matches)-r.quorum()]
	if !r.log.maybeCommit(q, r.term) {
		return false
	}
	r.onCommit()
	return true
}

// onCommit runs whatever waits on the commit index.
func (r *Raft) onCommit() {
	r.pruneConfigs()
	if r.state != StateLeader {
		return
	}
	if !r.committedInTerm && r.log.zeroTermOnMissing(r.log.committed) == r.term {
		r.committedInTerm = true
		r.reads.releaseWaiting(r)
	}
	c := r.config()
	if c.Index <= r.log.committed && !c.IsVoter(r.id) {
		// A leader removed or demoted by a committed configuration steps down
		// (§4.2.2), handing over to the most up-to-date voter to save an
		// election timeout.
		var best uint64
		for _, id := range c.Voters() {
			if pr := r.prs[id]; pr != nil && pr.Match == r.log.lastIndex() {
				best = id
				break
			}
		}
		if best != 0 {
			r.sendTimeoutNow(best)
		}
		r.becomeFollower(r.term, 0)
	}
}

// sendAppend sends the next batch of entries to a member, or a snapshot if
// they are compacted. With sendIfEmpty it sends even when there are no
// entries, to carry the commit index or probe. It reports whether it sent.
func (r *Raft) sendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.prs[to]
	if pr == nil || to == r.id || pr.isPaused() {
		return false
	}
	if m, ok := r.config().Member(to); !ok || m.Type == Reserve {
		return false
	}
	prevIndex := pr.Next - 1
	prevTerm, err := r.log.term(prevIndex)
	var ents []Entry
	if err == nil {
		ents, err = r.log.slice(pr.Next, r.log.lastIndex()+1, r.cfg.MaxSizePerMsg)
	}
	if err != nil {
		r.sendSnapshot(to, pr)
		return true
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	var bytes uint64
	for i := range ents {
		bytes += ents[i].size()
	}
	r.send(Message{Type: MsgApp, To: to, Index: prevIndex, LogTerm: prevTerm, Entries: ents, Commit: r.log.committed})
	pr.sentCommit = max(pr.sentCommit, r.log.committed)
	pr.sentEntries(prevIndex+uint64(len(ents)), bytes, len(ents) > 0)
	return true
}

func (r *Raft) sendSnapshot(to uint64, pr *Progress) {
	s, err := r.log.storage.Snapshot()
	if err != nil {
		panic(fmt.Sprintf("raft: storage snapshot: %v", err))
	}
	if s.Meta.IsEmpty() {
		panic("raft: a follower needs compacted entries but storage has no compaction point")
	}
	s.Meta = cloneMeta(s.Meta)
	r.send(Message{Type: MsgSnap, To: to, Snapshot: &s})
	pr.becomeSnapshot(s.Meta.Index)
	pr.snapshotSince = r.ticks
}

// commitAdvanced tells followers of a new commit index at once, unless the
// driver defers that (Config.LazyCommit).
func (r *Raft) commitAdvanced() {
	if !r.cfg.LazyCommit {
		r.bcastAppend()
	}
}

// CommitPending reports whether this member leads and some follower it can
// send to has not been told the commit index up to what it holds: a driver
// with Config.LazyCommit calls BroadcastCommit soon after.
func (r *Raft) CommitPending() bool {
	if r.state != StateLeader {
		return false
	}
	for _, m := range r.config().Members {
		if r.commitBehind(m) {
			return true
		}
	}
	return false
}

// BroadcastCommit sends an append (empty if there is nothing new) to every
// follower that has not been told the commit index up to what it holds.
func (r *Raft) BroadcastCommit() {
	if r.state != StateLeader {
		return
	}
	for _, m := range r.config().Members {
		if r.commitBehind(m) {
			r.sendAppend(m.ID, true)
		}
	}
}

// commitBehind reports whether member m holds committed entries it was not
// told are committed, and an append to it would go out now.
func (r *Raft) commitBehind(m Member) bool {
	if m.ID == r.id || m.Type == Reserve {
		return false
	}
	pr := r.prs[m.ID]
	return pr != nil && !pr.isPaused() && pr.sentCommit < min(pr.Match, r.log.committed)
}

func (r *Raft) bcastAppend() {
	for _, m := range r.config().Members {
		r.sendAppend(m.ID, true)
	}
}

// bcastHeartbeat starts a new heartbeat round; its sequence number lets the
// leader confirm ReadIndex requests and its lease (§6.4).
func (r *Raft) bcastHeartbeat() {
	seq := r.reads.newRound(r.ticks)
	for _, m := range r.config().Members {
		if m.ID == r.id || m.Type == Reserve {
			continue
		}
		pr := r.prs[m.ID]
		if pr == nil {
			continue
		}
		commit := min(pr.Match, r.log.committed)
		pr.sentCommit = max(pr.sentCommit, commit)
		r.send(Message{Type: MsgHeartbeat, To: m.ID, Commit: commit, Context: seq})
	}
	if r.quorum() == 1 && r.config().IsVoter(r.id) {
		r.advanceReads()
	}
}

// appendEntries appends entries of the current term to the leader's log.
func (r *Raft) appendEntries(ents ...Entry) uint64 {
	last := r.log.lastIndex()
	for i := range ents {
		ents[i].Term = r.term
		ents[i].Index = last + 1 + uint64(i)
	}
	last = r.log.append(ents...)
	r.trackConfigs(ents)
	return last
}

// Propose appends entries to the leader's log and returns the index of the
// last one. Entries must be EntryNormal; the core sets Term and Index.
func (r *Raft) Propose(ents ...Entry) (uint64, error) {
	if r.state != StateLeader {
		return 0, ErrNotLeader
	}
	if r.leadTransferee != 0 {
		return 0, ErrProposalDropped
	}
	for i := range ents {
		if ents[i].Type != EntryNormal {
			return 0, fmt.Errorf("raft: propose: entry of type %s: use ProposeConfChange for configuration", ents[i].Type)
		}
	}
	last := r.appendEntries(ents...)
	r.appendPending = true
	return last, nil
}

// ProposeConfChange proposes one membership change (§4.1) and returns the
// index of its entry. It takes effect on every member as soon as that member
// appends it.
func (r *Raft) ProposeConfChange(cc ConfChange) (uint64, error) {
	if r.state != StateLeader {
		return 0, ErrNotLeader
	}
	if r.leadTransferee != 0 {
		return 0, ErrProposalDropped
	}
	// One change at a time, and none before the leader has committed an
	// entry of its term (the correction to §4.3's single-server algorithm).
	if !r.committedInTerm || r.config().Index > r.log.committed {
		return 0, ErrConfigChangePending
	}
	next, err := r.config().apply(cc, func(id uint64) bool {
		pr := r.prs[id]
		return pr != nil && pr.Match >= r.log.committed
	})
	if err != nil {
		return 0, err
	}
	last := r.appendEntries(Entry{Type: EntryConfig, Timestamp: r.now(), Data: EncodeConfiguration(next)})
	r.bcastAppend()
	return last, nil
}

// TransferLeadership hands leadership to a voter (§3.10): proposals are
// refused meanwhile; once the target's log is up to date it is told to
// campaign at once. The attempt is abandoned after an election timeout.
func (r *Raft) TransferLeadership(to uint64) error {
	if r.state != StateLeader {
		return ErrNotLeader
	}
	if to == r.id {
		return nil
	}
	if !r.config().IsVoter(to) || r.prs[to] == nil {
		return fmt.Errorf("%w: %d is not an ACTIVE member", ErrInvalidTransferTarget, to)
	}
	if r.leadTransferee != 0 {
		if r.leadTransferee == to {
			return nil
		}
		return ErrTransferInProgress
	}
	r.leadTransferee = to
	r.electionElapsed = 0
	if r.prs[to].Match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.sendAppend(to, true)
	}
	return nil
}

// sendTimeoutNow tells a member to campaign at once (§3.10). Its votes will
// bypass the voters' leases, so this leader's own lease ends for good.
func (r *Raft) sendTimeoutNow(to uint64) {
	r.timeoutNowSent = true
	r.send(Message{Type: MsgTimeoutNow, To: to})
}

// ReportUnreachable tells the core that the last message to id may be lost.
func (r *Raft) ReportUnreachable(id uint64) {
	if pr := r.prs[id]; pr != nil && pr.State == StateReplicate {
		pr.becomeProbe()
	}
}

// ReportSnapshot tells the core whether the state at a compaction point
// reached member id. On success it waits for the member's acknowledgement;
// on failure it probes again.
func (r *Raft) ReportSnapshot(id uint64, ok bool) {
	pr := r.prs[id]
	if pr == nil || pr.State != StateSnapshot {
		return
	}
	if !ok {
		pr.PendingSnapshot = 0
	}
	pr.becomeProbe()
	pr.probeSent = true // wait for the member's answer or the next heartbeat
}
