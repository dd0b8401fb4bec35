package lock

//go:generate go run ../../cmd/copycatgen

import (
	"errors"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// ErrNotHolder is returned by Release when the token names neither the
// current holder nor a waiter of the calling session: the lock was already
// released, lost with the session, timed out or never taken.
//
//copycat:error
var ErrNotHolder = errors.New("lock: not held by this token")

// Granted is published to a waiter's session when its queued request
// becomes the holder. Token is the request's ticket (its Acquire index),
// which is also its fencing token.
//
//copycat:event
type Granted struct{ Token uint64 }

// TimedOut is published to a waiter's session when its Acquire wait ran
// out (in log time) before the lock was granted; the request left the queue.
//
//copycat:event
type TimedOut struct{ Token uint64 }

// Ticket is Acquire's answer. Token identifies the request (the index of
// its Acquire entry) and, once granted, is its fencing token. Granted says
// the lock was taken at once; Queued that the request waits for a Granted or
// TimedOut event; neither means a try-only request found the lock held.
type Ticket struct {
	Token   uint64
	Granted bool
	Queued  bool
}

// HolderInfo describes the lock's state: the holder's token and session
// (both 0 when free) and how many requests wait.
type HolderInfo struct {
	Token   uint64
	Session uint64
	Waiters int
}

// Lock is the state machine of a distributed, fair (FIFO) lock with fencing
// tokens. Its state is the Acquire commits it holds: the holder's and the
// waiters', in log order; every other commit is released at once.
//
//copycat:resource name=copycat.lock compaction=release
type Lock struct {
	ctx     runtime.Context
	holder  runtime.Commit
	waiters []waiter
}

// waiter is a queued Acquire.
type waiter struct {
	commit runtime.Commit
	timer  runtime.Timer // nil when the request waits forever
}

// Init keeps the context for wait timers.
func (l *Lock) Init(ctx runtime.Context) { l.ctx = ctx }

// Acquire asks for the lock on behalf of the calling session. A free lock
// with nobody queued is granted at once, with the request's index as token.
// Otherwise wait decides: negative queues the request until it is granted
// (a Granted event), zero gives up at once (try-only), positive queues it
// for at most wait of log time (then a TimedOut event).
//
//copycat:command
func (l *Lock) Acquire(c runtime.Commit, wait time.Duration) Ticket {
	if l.holder == nil && len(l.waiters) == 0 {
		l.holder = c
		return Ticket{Token: c.Index(), Granted: true}
	}
	if wait == 0 {
		c.Release()
		return Ticket{Token: c.Index()}
	}
	w := waiter{commit: c}
	if wait > 0 && l.ctx != nil {
		token := c.Index()
		w.timer = l.ctx.Schedule(wait, func() { l.timeout(token) })
	}
	l.waiters = append(l.waiters, w)
	return Ticket{Token: c.Index(), Queued: true}
}

// Release gives up the request with the given token, held or queued, and
// grants the lock to the next waiter if it was held. Only the session that
// made the request may release it: a stale token (a holder that lost the
// lock with its session) can never free someone else's lock.
//
//copycat:command
func (l *Lock) Release(c runtime.Commit, token uint64) error {
	defer c.Release()
	s := c.Session().ID()
	if l.holder != nil && l.holder.Index() == token && l.holder.Session().ID() == s {
		l.holder.Release()
		l.holder = nil
		l.grantNext()
		return nil
	}
	for i, w := range l.waiters {
		if w.commit.Index() == token && w.commit.Session().ID() == s {
			l.drop(i)
			return nil
		}
	}
	return ErrNotHolder
}

// Holder reports the holder and the length of the queue.
//
//copycat:query
func (l *Lock) Holder() HolderInfo {
	info := HolderInfo{Waiters: len(l.waiters)}
	if l.holder != nil {
		info.Token, info.Session = l.holder.Index(), l.holder.Session().ID()
	}
	return info
}

// SessionOpened is half of runtime.SessionListener; opening changes nothing.
func (l *Lock) SessionOpened(runtime.Session) {}

// SessionClosed frees what a closed or expired session held: its queued
// requests leave the queue and, if it held the lock, the next live waiter
// gets it.
func (l *Lock) SessionClosed(s runtime.Session, expired bool) {
	for i := 0; i < len(l.waiters); {
		if l.waiters[i].commit.Session().ID() == s.ID() {
			l.drop(i)
			continue
		}
		i++
	}
	if l.holder != nil && l.holder.Session().ID() == s.ID() {
		l.holder.Release()
		l.holder = nil
		l.grantNext()
	}
}

// Delete releases every commit the instance holds.
func (l *Lock) Delete() {
	if l.holder != nil {
		l.holder.Release()
		l.holder = nil
	}
	for len(l.waiters) > 0 {
		l.drop(0)
	}
}

// timeout ends a timed wait that the lock did not grant in time.
func (l *Lock) timeout(token uint64) {
	for i, w := range l.waiters {
		if w.commit.Index() == token {
			sess := w.commit.Session()
			l.waiters[i].timer = nil // it fired
			l.drop(i)
			sess.Publish(TimedOut{Token: token})
			return
		}
	}
}

// drop removes waiter i from the queue, stopping its timer and releasing
// its commit.
func (l *Lock) drop(i int) {
	w := l.waiters[i]
	if w.timer != nil {
		w.timer.Cancel()
	}
	w.commit.Release()
	l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
}

// grantNext hands the free lock to the first waiter whose session is open.
// Waiters of dead sessions have left in SessionClosed already; the check
// keeps a stand-in session from ever holding the lock.
func (l *Lock) grantNext() {
	for len(l.waiters) > 0 {
		w := l.waiters[0]
		l.waiters = l.waiters[1:]
		if w.timer != nil {
			w.timer.Cancel()
		}
		if w.commit.Session().State() != runtime.SessionOpen {
			w.commit.Release()
			continue
		}
		l.holder = w.commit
		w.commit.Session().Publish(Granted{Token: w.commit.Index()})
		return
	}
}
