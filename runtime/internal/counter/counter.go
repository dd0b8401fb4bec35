// Package counter is a hand-written resource for the runtime's own tests, in
// the shape copycatgen emits: a counter with a command, queries, an event
// published to every session, a declared error, session hooks and a timer.
package counter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
)

// ErrNegative is returned when a change would make the counter negative.
var ErrNegative = errors.New("counter: would go negative")

// Operation and event codes.
const (
	OpAdd      runtime.OpCode    = 1
	OpGet      runtime.OpCode    = 2
	OpSessions runtime.OpCode    = 3 // sessions seen closed by expiry
	OpAddLater runtime.OpCode    = 4 // adds after a delay of log time
	EvChanged  runtime.EventCode = 1
)

// Type is the descriptor servers register.
var Type = &runtime.ResourceType{
	Name:       "copycat.test.Counter",
	Compaction: runtime.Snapshot,
	Operations: []runtime.Operation{
		{Code: OpAdd, Name: "Add", Kind: runtime.Command},
		{Code: OpGet, Name: "Get", Kind: runtime.Query, Consistency: runtime.Linearizable},
		{Code: OpSessions, Name: "Expired", Kind: runtime.Query, Consistency: runtime.Linearizable},
		{Code: OpAddLater, Name: "AddLater", Kind: runtime.Command},
	},
	Events: []runtime.EventType{{Code: EvChanged, Name: "Changed"}},
	Errors: []runtime.ErrorType{{Code: 1, Err: ErrNegative}},
	New:    func() runtime.Resource { return &counter{} },
	EncodeEvent: func(e any) (runtime.EventCode, []byte, error) {
		if v, ok := e.(Changed); ok {
			return EvChanged, binary.AppendVarint(nil, v.Value), nil
		}
		return 0, nil, fmt.Errorf("counter: not an event: %T", e)
	},
}

// Changed is published to every open session after each change.
type Changed struct{ Value int64 }

type counter struct {
	ctx     runtime.Context
	value   int64
	expired int64
}

func (c *counter) Init(ctx runtime.Context)      { c.ctx = ctx }
func (c *counter) SessionOpened(runtime.Session) {}
func (c *counter) SessionClosed(s runtime.Session, expired bool) {
	if expired {
		c.expired++
	}
}

func (c *counter) add(d int64) error {
	if c.value+d < 0 {
		return ErrNegative
	}
	c.value += d
	for _, s := range c.ctx.Sessions() {
		s.Publish(Changed{Value: c.value})
	}
	return nil
}

// Execute dispatches an operation.
func (c *counter) Execute(cm runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	switch op {
	case OpAdd:
		d, _ := binary.Varint(args)
		if err := c.add(d); err != nil {
			return nil, err
		}
		return binary.AppendVarint(nil, c.value), nil
	case OpGet:
		return binary.AppendVarint(nil, c.value), nil
	case OpSessions:
		return binary.AppendVarint(nil, c.expired), nil
	case OpAddLater:
		d, n := binary.Varint(args)
		delay, _ := binary.Varint(args[n:])
		c.ctx.Schedule(time.Duration(delay), func() { _ = c.add(d) })
		return nil, nil
	}
	return nil, runtime.ErrUnknownOperation
}

// Client is the typed proxy.
type Client struct{ r *client.Resource }

// Open opens the named counter.
func Open(ctx context.Context, c *client.Client, name string) (*Client, error) {
	r, err := c.Open(ctx, Type, name)
	if err != nil {
		return nil, err
	}
	return &Client{r: r}, nil
}

func decode(b []byte, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	v, _ := binary.Varint(b)
	return v, nil
}

// Add adds d and returns the new value.
func (c *Client) Add(ctx context.Context, d int64) (int64, error) {
	return decode(c.r.Command(ctx, OpAdd, binary.AppendVarint(nil, d)))
}

// Get returns the value.
func (c *Client) Get(ctx context.Context, opts ...client.QueryOption) (int64, error) {
	return decode(c.r.Query(ctx, OpGet, nil, opts...))
}

// Expired returns how many sessions expired while the counter existed.
func (c *Client) Expired(ctx context.Context) (int64, error) {
	return decode(c.r.Query(ctx, OpSessions, nil))
}

// AddLater adds d once delay of log time has passed.
func (c *Client) AddLater(ctx context.Context, d int64, delay time.Duration) error {
	_, err := c.r.Command(ctx, OpAddLater, binary.AppendVarint(binary.AppendVarint(nil, d), int64(delay)))
	return err
}

// OnChanged calls f with every Changed event.
func (c *Client) OnChanged(f func(Changed)) (cancel func()) {
	return c.r.OnEvent(EvChanged, func(b []byte) {
		v, _ := binary.Varint(b)
		f(Changed{Value: v})
	})
}

// Resource returns the underlying handle.
func (c *Client) Resource() *client.Resource { return c.r }
