package extend_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime"
)

// fakeCommit drives a resource by hand.
type fakeCommit struct {
	index    uint64
	time     time.Time
	session  runtime.Session
	released int
}

func (c *fakeCommit) Index() uint64   { return c.index }
func (c *fakeCommit) Time() time.Time { return c.time }
func (c *fakeCommit) Session() runtime.Session {
	if c.session == nil {
		return &fakeSession{id: 1}
	}
	return c.session
}
func (c *fakeCommit) Release() { c.released++ }

type fakeSession struct {
	id     uint64
	events []any
}

func (s *fakeSession) ID() uint64                  { return s.id }
func (s *fakeSession) State() runtime.SessionState { return runtime.SessionOpen }
func (s *fakeSession) Publish(e any)               { s.events = append(s.events, e) }

// fakeContext is a resource's context with a hand-driven clock.
type fakeContext struct {
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at               time.Time
	f                func()
	cancelled, fired bool
}

func (t *fakeTimer) Cancel() bool {
	was := !t.cancelled && !t.fired
	t.cancelled = true
	return was
}

func (c *fakeContext) ResourceID() uint64 { return 1 }
func (c *fakeContext) Name() string       { return "r" }
func (c *fakeContext) Now() time.Time     { return c.now }
func (c *fakeContext) Schedule(d time.Duration, f func()) runtime.Timer {
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}
func (c *fakeContext) Session(uint64) runtime.Session { return nil }
func (c *fakeContext) Sessions() []runtime.Session    { return nil }

// advance moves the clock to now, firing the timers it passes in order.
func (c *fakeContext) advance(now time.Time) {
	c.now = now
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

func (c *fakeContext) pending() int {
	n := 0
	for _, t := range c.timers {
		if !t.cancelled && !t.fired {
			n++
		}
	}
	return n
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}
