package client

import (
	"context"
	"slices"
	"sync"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/protocol"
)

// Resource is an open resource instance: what generated proxies call.
type Resource struct {
	c    *Client
	typ  *runtime.ResourceType
	id   uint64
	name string

	mu        sync.Mutex
	listeners map[runtime.EventCode][]*listener
}

type listener struct{ f func([]byte) }

// ID returns the instance's ID (the index of the entry that created it).
func (r *Resource) ID() uint64 { return r.id }

// Name returns the name the instance was opened with.
func (r *Resource) Name() string { return r.name }

// Type returns the resource type.
func (r *Resource) Type() *runtime.ResourceType { return r.typ }

// Client returns the client the resource was opened through.
func (r *Resource) Client() *Client { return r.c }

// Command runs a command and returns its encoded result. Errors the resource
// type declares come back as themselves (errors.Is works).
func (r *Resource) Command(ctx context.Context, op runtime.OpCode, args []byte) ([]byte, error) {
	resp, err := r.c.call(ctx, &protocol.Message{Type: protocol.Command, Resource: r.id, Op: op, Args: args}, true)
	if err != nil {
		return nil, err
	}
	if err := wireErr(resp, r.typ); err != nil {
		return nil, err
	}
	return resp.Result, nil
}

// Pending is a command that was sent and whose outcome may not be known
// yet. Like every command, it runs to completion whether or not anyone
// waits for it.
type Pending struct {
	r *Resource
	o *op
}

// Start sends a command and returns without waiting for its outcome, in
// program order with the client's other operations as Command is. Callers
// that wait for either the outcome or something else (a context, an event)
// select on Done themselves instead of running Command on a goroutine of
// their own: the answer then wakes the waiting goroutine directly.
func (r *Resource) Start(op runtime.OpCode, args []byte) (*Pending, error) {
	o, err := r.c.submit(&protocol.Message{Type: protocol.Command, Resource: r.id, Op: op, Args: args}, true)
	if err != nil {
		return nil, err
	}
	return &Pending{r: r, o: o}, nil
}

// Done is closed once the command's outcome is known and every operation
// issued before it, and every event published to the session before it,
// has been delivered.
func (p *Pending) Done() <-chan struct{} { return p.o.done }

// Result returns the command's encoded result, as Command does. It may be
// called only once Done is closed.
func (p *Pending) Result() ([]byte, error) {
	if p.o.err != nil {
		return nil, p.o.err
	}
	if err := wireErr(p.o.resp, p.r.typ); err != nil {
		return nil, err
	}
	return p.o.resp.Result, nil
}

// Call is a command started without waiting for its outcome, whose result
// decodes to T: what a generated client's Start<Operation> method returns.
type Call[T any] struct {
	p      *Pending
	decode func([]byte) (T, error)
}

// StartCall starts a command as Start does; decode turns its encoded
// result into a T once it is known.
func StartCall[T any](r *Resource, op runtime.OpCode, args []byte, decode func([]byte) (T, error)) (*Call[T], error) {
	p, err := r.Start(op, args)
	if err != nil {
		return nil, err
	}
	return &Call[T]{p: p, decode: decode}, nil
}

// Done is closed once the command's outcome is known, as Pending.Done.
func (c *Call[T]) Done() <-chan struct{} { return c.p.Done() }

// Result returns the command's outcome, as the blocking method would have,
// waiting for Done to close first.
func (c *Call[T]) Result() (T, error) {
	<-c.p.Done()
	data, err := c.p.Result()
	if err != nil {
		var zero T
		return zero, err
	}
	return c.decode(data)
}

// Query runs a query at the operation's declared consistency unless an
// option says otherwise.
func (r *Resource) Query(ctx context.Context, op runtime.OpCode, args []byte, opts ...QueryOption) ([]byte, error) {
	var qo QueryOptions
	if o, ok := r.typ.Operation(op); ok {
		qo.Consistency = o.Consistency
	}
	for _, f := range opts {
		f(&qo)
	}
	if qo.Consistency == runtime.Default {
		qo.Consistency = runtime.Linearizable
	}
	resp, err := r.c.call(ctx, &protocol.Message{Type: protocol.Query, Resource: r.id, Op: op, Args: args, Consistency: qo.Consistency}, true)
	if err != nil {
		return nil, err
	}
	if err := wireErr(resp, r.typ); err != nil {
		return nil, err
	}
	return resp.Result, nil
}

// OnEvent calls f with the encoded data of every event of the given code
// the resource publishes to this session, in order. Listeners run on one
// goroutine and must not block on calls through the same client.
func (r *Resource) OnEvent(code runtime.EventCode, f func(data []byte)) (cancel func()) {
	l := &listener{f: f}
	r.mu.Lock()
	r.listeners[code] = append(r.listeners[code], l)
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.listeners[code] = slices.DeleteFunc(r.listeners[code], func(x *listener) bool { return x == l })
	}
}

// Close stops event delivery to this handle. The instance lives on.
func (r *Resource) Close() error {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resources[r.id] = slices.DeleteFunc(c.resources[r.id], func(x *Resource) bool { return x == r })
	return nil
}

// Delete deletes the instance from the cluster for everyone.
func (r *Resource) Delete(ctx context.Context) error {
	resp, err := r.c.call(ctx, &protocol.Message{Type: protocol.DeleteResource, Resource: r.id}, true)
	if err != nil {
		return err
	}
	if err := wireErr(resp, r.typ); err != nil {
		return err
	}
	return r.Close()
}

// listenersFor returns the listeners of a resource's event code.
func (c *Client) listenersFor(resource uint64, code runtime.EventCode) []func([]byte) {
	c.mu.Lock()
	rs := slices.Clone(c.resources[resource])
	c.mu.Unlock()
	var out []func([]byte)
	for _, r := range rs {
		r.mu.Lock()
		for _, l := range r.listeners[code] {
			out = append(out, l.f)
		}
		r.mu.Unlock()
	}
	return out
}
