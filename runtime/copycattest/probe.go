package copycattest

import (
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime"
)

// Probe reaches each member's instance of a resource type, to check that
// every member computed the same state (TTLs expiring at the same log time,
// the same entries after a crash):
//
//	var p copycattest.Probe
//	c := copycattest.NewCluster(t, 3, p.Wrap(dmap.MapType))
//	for _, inst := range p.Instances("sessions") { ... inst.Query(t, op, args, &result) ... }
//
// Each instance is guarded by its own mutex, held while its member applies
// an operation, fires a timer or runs a hook, and while the test reads it.
type Probe struct {
	mu    sync.Mutex
	insts []*Instance
}

// Wrap returns a copy of the type whose instances the probe records.
func (p *Probe) Wrap(base *runtime.ResourceType) *runtime.ResourceType {
	t := *base
	t.New = func() runtime.Resource {
		r := &Instance{inner: base.New()}
		p.mu.Lock()
		p.insts = append(p.insts, r)
		p.mu.Unlock()
		return r
	}
	return &t
}

// Instances returns the instances opened with the given name on every
// member, in creation order (a restarted member creates a new one).
func (p *Probe) Instances(name string) []*Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*Instance
	for _, r := range p.insts {
		r.mu.Lock()
		if r.ctx != nil && r.ctx.Name() == name {
			out = append(out, r)
		}
		r.mu.Unlock()
	}
	return out
}

// Instance is one member's instance of a probed resource.
type Instance struct {
	mu    sync.Mutex
	inner runtime.Resource
	ctx   runtime.Context
	fired []time.Time
}

// Do runs f with the instance's resource, under its lock.
func (r *Instance) Do(f func(runtime.Resource)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.inner)
}

// Query runs a query on this member's instance, msgpack-encoding args and
// decoding into result (either may be nil).
func (r *Instance) Query(t testing.TB, op runtime.OpCode, args, result any) {
	t.Helper()
	var data []byte
	if args != nil {
		b, err := msgpack.Marshal(args)
		if err != nil {
			t.Fatalf("copycattest: encode query args: %v", err)
		}
		data = b
	}
	r.mu.Lock()
	out, err := r.inner.Execute(&FakeCommit{}, op, data)
	r.mu.Unlock()
	if err != nil {
		t.Fatalf("copycattest: query %d: %v", op, err)
	}
	if result != nil {
		if err := msgpack.Unmarshal(out, result); err != nil {
			t.Fatalf("copycattest: decode query result: %v", err)
		}
	}
}

// Firings returns the state machine time at which each of the instance's
// timers fired.
func (r *Instance) Firings() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.fired...)
}

// Execute implements runtime.Resource.
func (r *Instance) Execute(c runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inner.Execute(c, op, args)
}

// Init implements runtime.Initializer.
func (r *Instance) Init(ctx runtime.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ctx = ctx
	if in, ok := r.inner.(runtime.Initializer); ok {
		in.Init(&probeContext{Context: ctx, r: r})
	}
}

// SessionOpened implements runtime.SessionListener.
func (r *Instance) SessionOpened(s runtime.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.inner.(runtime.SessionListener); ok {
		l.SessionOpened(s)
	}
}

// SessionClosed implements runtime.SessionListener.
func (r *Instance) SessionClosed(s runtime.Session, expired bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.inner.(runtime.SessionListener); ok {
		l.SessionClosed(s, expired)
	}
}

// Delete implements runtime.Deleter.
func (r *Instance) Delete() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.inner.(runtime.Deleter); ok {
		d.Delete()
	}
}

// probeContext runs the resource's timers under the instance's lock and
// records when they fire.
type probeContext struct {
	runtime.Context
	r *Instance
}

func (c *probeContext) Schedule(d time.Duration, f func()) runtime.Timer {
	return c.Context.Schedule(d, func() {
		c.r.mu.Lock()
		defer c.r.mu.Unlock()
		c.r.fired = append(c.r.fired, c.Context.Now())
		f()
	})
}
