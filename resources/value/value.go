// Package value is a replicated byte-slice register: Copycat's atomic
// value, with an optional time to live and change events.
//
// Register ValueType with the members and open an instance by name:
//
//	srv, err := server.New(cfg, value.ValueType)
//	...
//	v, err := value.OpenValue(ctx, cli, "config")
//	err = v.Set(ctx, []byte("v1"), 0)                  // no expiry
//	ok, err := v.CompareAndSet(ctx, []byte("v1"), []byte("v2"))
//	old, err := v.GetAndSet(ctx, []byte("v3"))        // "v2"
//	err = v.Set(ctx, []byte("lease"), 10*time.Second) // gone 10s later
//	b, err := v.Get(ctx)                              // nil once expired
//
//	stop, err := v.Watch(ctx, func(e value.Changed) { ... })
//	defer stop(ctx)
//
// # Expiry
//
// A time to live counts on the state machine's clock (the leader's
// timestamps on the log), so the value expires at the same point of the log
// on every member, and still expires if the leader that accepted it
// crashes. The deadline is part of the state: a member restored from a
// snapshot schedules it again.
//
// # Events
//
// A change (a write that changes the bytes, or an expiry) is published as
// Changed only to the sessions that asked for it with Listen (Watch does
// both the Listen and the local OnChanged). Publishing to every session
// would put an event in the replicated queue of every client of the
// cluster, whether or not it uses this value; listening is one command per
// interested client and costs nothing to the others.
package value

//go:generate go run ../../cmd/copycatgen

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// Value is a replicated []byte register. A nil value means unset; the
// empty and the nil slice are the same value.
//
//copycat:resource name=copycat.value
type Value struct {
	ctx   runtime.Context
	timer runtime.Timer

	value []byte
	// deadline is when value expires; zero for never.
	deadline time.Time
	// listeners holds the IDs of the sessions that listen for Changed.
	listeners map[uint64]bool
}

// Changed is published to listening sessions when the value changes: by a
// write (Set, CompareAndSet, GetAndSet) or an expiry (New is nil, Expired
// true).
//
//copycat:event
type Changed struct {
	Old     []byte
	New     []byte
	Expired bool
}

// ErrNegativeTTL is returned by Set for a negative time to live.
//
//copycat:error
var ErrNegativeTTL = errors.New("value: negative time to live")

// Init keeps the context and schedules the expiry of a restored value.
func (v *Value) Init(ctx runtime.Context) {
	v.ctx = ctx
	if v.timer != nil {
		v.timer.Cancel()
		v.timer = nil
	}
	if !v.deadline.IsZero() {
		v.schedule()
	}
}

// Get returns the value, or nil if it is unset or expired.
//
//copycat:query
func (v *Value) Get() []byte { return v.value }

// Set replaces the value. A positive ttl makes it expire (become nil) once
// ttl has passed on the state machine's clock; zero means never.
//
//copycat:command
func (v *Value) Set(c runtime.Commit, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return ErrNegativeTTL
	}
	v.write(value)
	if ttl > 0 {
		v.deadline = c.Time().Add(ttl)
		v.schedule()
	}
	return nil
}

// CompareAndSet sets the value to update if it equals expect (nil expects
// an unset value) and reports whether it did. A successful write removes
// any time to live.
//
//copycat:command
func (v *Value) CompareAndSet(expect, update []byte) bool {
	if !bytes.Equal(v.value, expect) {
		return false
	}
	v.write(update)
	return true
}

// GetAndSet replaces the value and returns the one before. It removes any
// time to live.
//
//copycat:command
func (v *Value) GetAndSet(value []byte) []byte {
	old := v.value
	v.write(value)
	return old
}

// Listen makes the calling session receive Changed events until it calls
// Unlisten or ends. Listening twice is the same as once.
//
//copycat:command
func (v *Value) Listen(c runtime.Commit) {
	if v.listeners == nil {
		v.listeners = map[uint64]bool{}
	}
	v.listeners[c.Session().ID()] = true
}

// Unlisten stops Changed events to the calling session.
//
//copycat:command
func (v *Value) Unlisten(c runtime.Commit) {
	delete(v.listeners, c.Session().ID())
}

// SessionOpened implements runtime.SessionListener.
func (v *Value) SessionOpened(runtime.Session) {}

// SessionClosed forgets a listener that ended.
func (v *Value) SessionClosed(s runtime.Session, _ bool) {
	delete(v.listeners, s.ID())
}

// Delete stops the expiry timer.
func (v *Value) Delete() {
	v.cancelTimer()
}

// write stores value, drops any deadline and tells listeners.
func (v *Value) write(value []byte) {
	v.cancelTimer()
	v.deadline = time.Time{}
	if len(value) == 0 {
		value = nil
	}
	old := v.value
	v.value = value
	if !bytes.Equal(old, value) {
		v.publish(Changed{Old: old, New: value})
	}
}

func (v *Value) cancelTimer() {
	if v.timer != nil {
		v.timer.Cancel()
		v.timer = nil
	}
}

// schedule arms the timer for v.deadline.
func (v *Value) schedule() {
	v.timer = v.ctx.Schedule(max(v.deadline.Sub(v.ctx.Now()), 0), v.expire)
}

func (v *Value) expire() {
	if v.deadline.IsZero() || v.ctx.Now().Before(v.deadline) {
		return // overwritten after the timer was armed
	}
	v.timer = nil
	old := v.value
	v.value, v.deadline = nil, time.Time{}
	if old != nil {
		v.publish(Changed{Old: old, Expired: true})
	}
}

func (v *Value) publish(e Changed) {
	if len(v.listeners) == 0 || v.ctx == nil {
		return
	}
	// Sorted: every member queues the same events in the same order.
	for _, id := range slices.Sorted(maps.Keys(v.listeners)) {
		if s := v.ctx.Session(id); s != nil {
			s.Publish(e)
		}
	}
}
