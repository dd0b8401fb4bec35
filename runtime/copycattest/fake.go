package copycattest

import (
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// FakeCommit is a runtime.Commit driven by hand, for unit tests that call a
// resource's Execute directly (no cluster).
type FakeCommit struct {
	At       uint64          // what Index returns
	Clock    time.Time       // what Time returns
	Caller   runtime.Session // what Session returns; a FakeSession with ID 1 if nil
	Released int             // how often Release was called
}

func (c *FakeCommit) Index() uint64   { return c.At }
func (c *FakeCommit) Time() time.Time { return c.Clock }
func (c *FakeCommit) Session() runtime.Session {
	if c.Caller == nil {
		return &FakeSession{SessionID: 1}
	}
	return c.Caller
}
func (c *FakeCommit) Release() { c.Released++ }

// FakeSession is a runtime.Session that records what is published to it.
type FakeSession struct {
	SessionID uint64
	Events    []any
	Closed    bool
}

func (s *FakeSession) ID() uint64 { return s.SessionID }
func (s *FakeSession) State() runtime.SessionState {
	if s.Closed {
		return runtime.SessionClosed
	}
	return runtime.SessionOpen
}
func (s *FakeSession) Publish(e any) {
	if !s.Closed {
		s.Events = append(s.Events, e)
	}
}

// FakeContext is a runtime.Context with a clock the test moves by hand:
// Advance fires the timers it passes, in order.
type FakeContext struct {
	Clock        time.Time
	SessionsByID map[uint64]runtime.Session
	ID           uint64
	ResName      string
	timers       []*fakeTimer
}

type fakeTimer struct {
	at        time.Time
	f         func()
	cancelled bool
	fired     bool
}

func (t *fakeTimer) Cancel() bool {
	was := !t.cancelled && !t.fired
	t.cancelled = true
	return was
}

func (c *FakeContext) ResourceID() uint64 { return c.ID }
func (c *FakeContext) Name() string       { return c.ResName }
func (c *FakeContext) Now() time.Time     { return c.Clock }

func (c *FakeContext) Schedule(d time.Duration, f func()) runtime.Timer {
	t := &fakeTimer{at: c.Clock.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (c *FakeContext) Session(id uint64) runtime.Session { return c.SessionsByID[id] }

func (c *FakeContext) Sessions() []runtime.Session {
	var out []runtime.Session
	for _, s := range c.SessionsByID {
		out = append(out, s)
	}
	return out
}

// Advance moves the clock to now, firing the timers it passes in time order.
func (c *FakeContext) Advance(now time.Time) {
	c.Clock = now
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.cancelled && !t.fired && !t.at.After(now) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			return
		}
		next.fired = true
		next.f()
	}
}

// Pending counts the timers armed and not fired.
func (c *FakeContext) Pending() int {
	n := 0
	for _, t := range c.timers {
		if !t.cancelled && !t.fired {
			n++
		}
	}
	return n
}

// NextDeadline returns when the earliest armed timer is due.
func (c *FakeContext) NextDeadline() (time.Time, bool) {
	var at time.Time
	found := false
	for _, t := range c.timers {
		if !t.cancelled && !t.fired && (!found || t.at.Before(at)) {
			at, found = t.at, true
		}
	}
	return at, found
}
