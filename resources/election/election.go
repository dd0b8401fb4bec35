package election

//go:generate go run ../../cmd/copycatgen

import (
	"errors"
	"maps"
	"slices"

	"github.com/copycat-go/copycat/runtime"
)

// ErrNotLeader is returned by Proclaim when the given term is not the
// current leader's term of the calling session: the caller resigned, lost
// its leadership with its session, or was never elected.
//
//copycat:error
var ErrNotLeader = errors.New("election: not the leader of this term")

// ErrNotCandidate is returned by Resign when the term names neither the
// leader nor a waiting candidate of the calling session.
//
//copycat:error
var ErrNotCandidate = errors.New("election: not a candidate of this term")

// Elected is published to a waiting candidate's session when its campaign
// becomes the leader. Term is the campaign's term (its Campaign index).
//
//copycat:event
type Elected struct{ Term uint64 }

// Changed is published to listening sessions (Listen) each time the
// leadership changes: a new leader (Term > 0), no leader (Term 0), or a new
// value proclaimed by the leader (same Term, Proclaimed set).
//
//copycat:event
type Changed struct {
	Leader     LeaderInfo
	Proclaimed bool
}

// Ticket is Campaign's answer: the campaign's Term (the index of its
// Campaign entry) and whether it was elected at once; otherwise it waits
// for an Elected event.
type Ticket struct {
	Term    uint64
	Elected bool
}

// LeaderInfo describes the election's state: the leader's candidate name,
// term, session and proclaimed value (all zero when nobody leads), and how
// many candidates wait behind it.
type LeaderInfo struct {
	Candidate string
	Term      uint64
	Session   uint64
	Value     []byte
	Waiting   int
}

// Election is the state machine of a leader election: campaigns are
// elected one at a time in log (FIFO) order; the leader keeps its term until
// it resigns or its session ends. Its state is the Campaign commits of the
// leader and the waiting candidates, the leader's last Proclaim and the
// Listen commits of listening sessions; every other commit is released at
// once.
//
//copycat:resource name=copycat.election compaction=release
type Election struct {
	leader    *campaign
	proclaim  runtime.Commit // the leader's last Proclaim, nil if none
	value     []byte
	waiting   []*campaign
	listeners map[uint64]runtime.Commit // Listen commits by session ID
}

// campaign is a Campaign commit and its candidate name.
type campaign struct {
	commit    runtime.Commit
	candidate string
}

// Campaign runs for leadership on behalf of the calling session under the
// given candidate name. With no leader and nobody waiting it is elected at
// once; otherwise it waits its turn and is told by an Elected event. Its
// term is the index of this command: unique, and larger than the term of
// every earlier leader.
//
//copycat:command
func (e *Election) Campaign(c runtime.Commit, candidate string) Ticket {
	cp := &campaign{commit: c, candidate: candidate}
	if e.leader == nil && len(e.waiting) == 0 {
		e.elect(cp, false)
		return Ticket{Term: c.Index(), Elected: true}
	}
	e.waiting = append(e.waiting, cp)
	return Ticket{Term: c.Index()}
}

// Resign withdraws the calling session's campaign of the given term: a
// leader steps down (and the next waiting candidate is elected), a waiting
// candidate leaves the queue.
//
//copycat:command
func (e *Election) Resign(c runtime.Commit, term uint64) error {
	defer c.Release()
	s := c.Session().ID()
	if e.leader != nil && e.leader.commit.Index() == term && e.leader.commit.Session().ID() == s {
		e.stepDown()
		return nil
	}
	for i, w := range e.waiting {
		if w.commit.Index() == term && w.commit.Session().ID() == s {
			w.commit.Release()
			e.waiting = slices.Delete(e.waiting, i, i+1)
			return nil
		}
	}
	return ErrNotCandidate
}

// Proclaim sets the leader's value. The calling session must lead under
// the given term; otherwise ErrNotLeader, and nothing changes.
//
//copycat:command
func (e *Election) Proclaim(c runtime.Commit, term uint64, value []byte) error {
	if e.leader == nil || e.leader.commit.Index() != term || e.leader.commit.Session().ID() != c.Session().ID() {
		c.Release()
		return ErrNotLeader
	}
	if e.proclaim != nil {
		e.proclaim.Release()
	}
	e.proclaim, e.value = c, value
	e.publish(true)
	return nil
}

// Leader reports the leader, its term and value, and the number of
// waiting candidates.
//
//copycat:query
func (e *Election) Leader() LeaderInfo { return e.info() }

// Listen makes the calling session receive a Changed event for every
// change of leader or value, until Unlisten or the end of the session.
//
//copycat:command
func (e *Election) Listen(c runtime.Commit) {
	id := c.Session().ID()
	if old := e.listeners[id]; old != nil {
		old.Release()
	}
	if e.listeners == nil {
		e.listeners = map[uint64]runtime.Commit{}
	}
	e.listeners[id] = c
}

// Unlisten stops Changed events to the calling session.
//
//copycat:command
func (e *Election) Unlisten(c runtime.Commit) {
	c.Release()
	e.unlisten(c.Session().ID())
}

// SessionOpened is half of runtime.SessionListener; opening changes nothing.
func (e *Election) SessionOpened(runtime.Session) {}

// SessionClosed frees what a closed or expired session held: its waiting
// campaigns leave the queue and, if it led, the next waiting candidate whose
// session is open is elected at once.
func (e *Election) SessionClosed(s runtime.Session, _ bool) {
	e.unlisten(s.ID())
	e.waiting = slices.DeleteFunc(e.waiting, func(w *campaign) bool {
		if w.commit.Session().ID() == s.ID() {
			w.commit.Release()
			return true
		}
		return false
	})
	if e.leader != nil && e.leader.commit.Session().ID() == s.ID() {
		e.stepDown()
	}
}

// Delete releases every commit the instance holds.
func (e *Election) Delete() {
	if e.leader != nil {
		e.leader.commit.Release()
		e.leader = nil
	}
	if e.proclaim != nil {
		e.proclaim.Release()
		e.proclaim, e.value = nil, nil
	}
	for _, w := range e.waiting {
		w.commit.Release()
	}
	e.waiting = nil
	for id := range e.listeners {
		e.unlisten(id)
	}
}

// stepDown ends the current leader's term and elects the next candidate.
func (e *Election) stepDown() {
	e.leader.commit.Release()
	e.leader = nil
	if e.proclaim != nil {
		e.proclaim.Release()
	}
	e.proclaim, e.value = nil, nil
	for len(e.waiting) > 0 {
		w := e.waiting[0]
		e.waiting = e.waiting[1:]
		if w.commit.Session().State() != runtime.SessionOpen {
			// Left in SessionClosed already; never elect a stand-in.
			w.commit.Release()
			continue
		}
		e.elect(w, true)
		return
	}
	e.publish(false) // nobody leads
}

// elect makes cp the leader, telling its session if it waited.
func (e *Election) elect(cp *campaign, waited bool) {
	e.leader = cp
	if waited {
		cp.commit.Session().Publish(Elected{Term: cp.commit.Index()})
	}
	e.publish(false)
}

func (e *Election) info() LeaderInfo {
	info := LeaderInfo{Waiting: len(e.waiting)}
	if e.leader != nil {
		info.Candidate = e.leader.candidate
		info.Term = e.leader.commit.Index()
		info.Session = e.leader.commit.Session().ID()
		info.Value = e.value
	}
	return info
}

// publish tells every listening session, in session ID order (so every
// member queues the same events), the current leadership.
func (e *Election) publish(proclaimed bool) {
	if len(e.listeners) == 0 {
		return
	}
	ev := Changed{Leader: e.info(), Proclaimed: proclaimed}
	for _, id := range slices.Sorted(maps.Keys(e.listeners)) {
		e.listeners[id].Session().Publish(ev)
	}
}

func (e *Election) unlisten(id uint64) {
	if l := e.listeners[id]; l != nil {
		l.Release()
		delete(e.listeners, id)
	}
}
