// Package extend shows how to build on Copycat's built-in resources by
// embedding them: TrackedLock is the built-in lock with a history of its
// holds, VersionedMap the built-in map with a version per key. See
// README.md.
package extend

//go:generate go run ../../cmd/copycatgen

import (
	"time"

	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime"
)

// MaxHistory is how many holds a TrackedLock remembers at least; older ones
// are forgotten a whole busy period (from a free lock to a free lock) at a
// time.
const MaxHistory = 64

// Hold is one grant of a TrackedLock: its fencing token, the session that
// held it, and when it was granted and ended, in log time (To is zero while
// it is held).
type Hold struct {
	Token   uint64
	Session uint64
	From    time.Time
	To      time.Time
}

// TrackedLock is lock.Lock recording who held it and for how long. It
// inherits the lock's operations (Acquire, Release, Holder), events
// (Granted, TimedOut), error (ErrNotHolder) and release-mode compaction,
// and overrides Acquire and Release to observe them.
//
// Compaction: the lock releases an Acquire once its hold ends, but the
// history must survive a replay of the live commits. So TrackedLock hands
// the lock its commits wrapped in pinned, whose Release does nothing, and
// keeps every Acquire and Release of a busy period live itself. A busy
// period starts from a free lock with nobody queued, so replaying the
// periods kept rebuilds the same holds at the same log times; once more
// than MaxHistory holds are remembered, whole old periods are forgotten and
// their commits released.
//
//copycat:resource
type TrackedLock struct {
	lock.Lock
	ctx     runtime.Context
	history []Hold
	periods []period         // ended busy periods still in history, oldest first
	current []runtime.Commit // the commits of the busy period under way
	holds   int              // holds begun in the busy period under way
}

// period is an ended busy period: how many holds it had and its commits.
type period struct {
	holds   int
	commits []runtime.Commit
}

// pinned is a commit whose Release does nothing: TrackedLock releases it.
type pinned struct{ runtime.Commit }

func (pinned) Release() {}

// Init hands the context to the lock (a hook declared here replaces the
// embedded one, so it is called by hand).
func (t *TrackedLock) Init(ctx runtime.Context) {
	t.ctx = ctx
	t.Lock.Init(ctx)
}

// Acquire is lock.Lock's Acquire, recorded.
//
//copycat:command
func (t *TrackedLock) Acquire(c runtime.Commit, wait time.Duration) lock.Ticket {
	tk := t.Lock.Acquire(pinned{c}, wait)
	t.current = append(t.current, c)
	t.observe(c.Time())
	return tk
}

// Release is lock.Lock's Release, recorded.
//
//copycat:command
func (t *TrackedLock) Release(c runtime.Commit, token uint64) error {
	err := t.Lock.Release(pinned{c}, token)
	t.current = append(t.current, c)
	t.observe(c.Time())
	return err
}

// History returns the remembered holds, oldest first; the last one has a
// zero To while the lock is held.
//
//copycat:query
func (t *TrackedLock) History() []Hold {
	return append([]Hold(nil), t.history...)
}

// SessionOpened is half of runtime.SessionListener.
func (t *TrackedLock) SessionOpened(s runtime.Session) { t.Lock.SessionOpened(s) }

// SessionClosed lets the lock free what the session held and records the
// end of its hold (and the grant to the next waiter) at the log time of
// the session's end.
func (t *TrackedLock) SessionClosed(s runtime.Session, expired bool) {
	t.Lock.SessionClosed(s, expired)
	if t.ctx != nil {
		t.observe(t.ctx.Now())
	}
}

// Delete frees the lock and releases every commit kept.
func (t *TrackedLock) Delete() {
	t.Lock.Delete()
	for _, p := range t.periods {
		release(p.commits)
	}
	release(t.current)
	t.periods, t.current, t.history, t.holds = nil, nil, nil, 0
}

// observe compares the lock's holder with the history after an operation.
func (t *TrackedLock) observe(now time.Time) {
	h := t.Lock.Holder()
	last := len(t.history) - 1
	if last >= 0 && t.history[last].To.IsZero() && t.history[last].Token != h.Token {
		t.history[last].To = now
	}
	if h.Token != 0 && (last < 0 || t.history[last].Token != h.Token) {
		t.history = append(t.history, Hold{Token: h.Token, Session: h.Session, From: now})
		t.holds++
	}
	if h.Token == 0 && h.Waiters == 0 {
		t.endPeriod()
	}
}

// endPeriod closes the busy period under way, the lock being free with
// nobody queued, and forgets the oldest periods beyond MaxHistory holds.
func (t *TrackedLock) endPeriod() {
	if t.holds == 0 {
		release(t.current) // nothing was granted: nothing to replay
	} else {
		t.periods = append(t.periods, period{holds: t.holds, commits: t.current})
	}
	t.current, t.holds = nil, 0
	for len(t.periods) > 0 && len(t.history)-t.periods[0].holds >= MaxHistory {
		p := t.periods[0]
		t.periods = t.periods[1:]
		release(p.commits)
		t.history = t.history[p.holds:]
	}
}

func release(cs []runtime.Commit) {
	for _, c := range cs {
		c.Release()
	}
}
