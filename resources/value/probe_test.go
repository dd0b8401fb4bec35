package value_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime"
)

// probe wraps a resource type so a test can read the state of every
// member's instance: each instance is guarded by its own mutex, held while
// the member applies an operation, fires a timer or runs a hook, and while
// the test reads it.
type probe struct {
	mu    sync.Mutex
	insts []*probed
}

func (p *probe) wrap(base *runtime.ResourceType) *runtime.ResourceType {
	t := *base
	t.New = func() runtime.Resource {
		r := &probed{inner: base.New()}
		p.mu.Lock()
		p.insts = append(p.insts, r)
		p.mu.Unlock()
		return r
	}
	return &t
}

// instances returns the instances opened with the given name, on every
// member, in creation order (restarted members create new ones).
func (p *probe) instances(name string) []*probed {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*probed
	for _, r := range p.insts {
		r.mu.Lock()
		if r.ctx != nil && r.ctx.Name() == name {
			out = append(out, r)
		}
		r.mu.Unlock()
	}
	return out
}

type probed struct {
	mu    sync.Mutex
	inner runtime.Resource
	ctx   runtime.Context
	fired []time.Time // state machine time at each timer that fired
}

func (r *probed) Execute(c runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inner.Execute(c, op, args)
}

func (r *probed) Init(ctx runtime.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ctx = ctx
	if in, ok := r.inner.(runtime.Initializer); ok {
		in.Init(&probeContext{Context: ctx, r: r})
	}
}

func (r *probed) SessionOpened(s runtime.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.inner.(runtime.SessionListener); ok {
		l.SessionOpened(s)
	}
}

func (r *probed) SessionClosed(s runtime.Session, expired bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.inner.(runtime.SessionListener); ok {
		l.SessionClosed(s, expired)
	}
}

func (r *probed) Delete() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.inner.(runtime.Deleter); ok {
		d.Delete()
	}
}

// query runs a query on this member's instance.
func (r *probed) query(t *testing.T, op runtime.OpCode, args, result any) {
	t.Helper()
	var data []byte
	if args != nil {
		data = mustMarshal(t, args)
	}
	r.mu.Lock()
	out, err := r.inner.Execute(&fakeCommit{}, op, data)
	r.mu.Unlock()
	require.NoError(t, err)
	if result != nil {
		require.NoError(t, msgpack.Unmarshal(out, result))
	}
}

func (r *probed) firings() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.fired...)
}

// probeContext runs the resource's timers under the instance's mutex and
// records when they fire.
type probeContext struct {
	runtime.Context
	r *probed
}

func (c *probeContext) Schedule(d time.Duration, f func()) runtime.Timer {
	return c.Context.Schedule(d, func() {
		c.r.mu.Lock()
		defer c.r.mu.Unlock()
		c.r.fired = append(c.r.fired, c.Context.Now())
		f()
	})
}

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
	now      time.Time
	sessions map[uint64]runtime.Session
	timers   []*fakeTimer
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

func (c *fakeContext) ResourceID() uint64 { return 1 }
func (c *fakeContext) Name() string       { return "r" }
func (c *fakeContext) Now() time.Time     { return c.now }
func (c *fakeContext) Schedule(d time.Duration, f func()) runtime.Timer {
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}
func (c *fakeContext) Session(id uint64) runtime.Session { return c.sessions[id] }
func (c *fakeContext) Sessions() []runtime.Session       { return nil }

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

// pending counts the armed timers.
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
