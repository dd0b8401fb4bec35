package statemachine

import (
	"fmt"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// commit is the runtime.Commit handed to resource methods.
type commit struct {
	sm   *StateMachine
	exec *execution
}

func (c *commit) Index() uint64   { return c.exec.index }
func (c *commit) Time() time.Time { return c.sm.now }
func (c *commit) Session() runtime.Session {
	return c.sm.handle(c.exec.session, c.exec.resource)
}
func (c *commit) Release() {
	if c.exec.query {
		panic("copycat: a query cannot release its commit")
	}
	if c.exec.released {
		return
	}
	c.exec.released = true
	if c.sm.cur != c.exec {
		// Released later, after the command returned (a lock unlocked by a
		// later command releases the locking command).
		delete(c.exec.resource.commands, c.exec.index)
	}
}

// handle returns the runtime.Session for a session as a resource sees it.
// Handles are comparable: the same session seen by the same resource gives
// equal values.
func (sm *StateMachine) handle(id uint64, inst *instance) runtime.Session {
	return sessionHandle{sm: sm, id: id, inst: inst}
}

type sessionHandle struct {
	sm   *StateMachine
	id   uint64
	inst *instance
}

func (h sessionHandle) ID() uint64 { return h.id }

func (h sessionHandle) State() runtime.SessionState {
	s, ok := h.sm.sessions.Get(h.id)
	if !ok {
		return runtime.SessionClosed
	}
	return s.State
}

// Publish queues an event for the session at the index being applied. An
// event the resource type cannot encode fails the command that published it,
// not the session (copycat#272).
func (h sessionHandle) Publish(event any) {
	s, ok := h.sm.sessions.Get(h.id)
	if !ok || s.State != runtime.SessionOpen || h.sm.replaying {
		return
	}
	exec := h.sm.cur
	if exec == nil {
		panic("copycat: Publish outside of a command, hook or timer")
	}
	if exec.query {
		panic("copycat: a query cannot publish events")
	}
	if h.inst.typ.EncodeEvent == nil {
		exec.err = fmt.Errorf("copycat: resource type %s declares no events", h.inst.typ.Name)
		return
	}
	code, data, err := h.inst.typ.EncodeEvent(event)
	if err != nil {
		exec.err = fmt.Errorf("copycat: encode event %T: %w", event, err)
		return
	}
	s.Publish(exec.index, session.Event{Resource: h.inst.id, Code: code, Data: data})
	h.sm.published[h.id] = true
}

// resourceContext is the runtime.Context of one resource instance.
type resourceContext struct {
	sm   *StateMachine
	inst *instance
}

func (c *resourceContext) ResourceID() uint64 { return c.inst.id }
func (c *resourceContext) Name() string       { return c.inst.name }
func (c *resourceContext) Now() time.Time     { return c.sm.now }

func (c *resourceContext) Schedule(delay time.Duration, f func()) runtime.Timer {
	return c.sm.timers.schedule(c.sm.now.Add(delay), c.inst.id, f)
}

func (c *resourceContext) Session(id uint64) runtime.Session {
	s, ok := c.sm.sessions.Get(id)
	if !ok || s.State != runtime.SessionOpen {
		return nil
	}
	return c.sm.handle(id, c.inst)
}

func (c *resourceContext) Sessions() []runtime.Session {
	var out []runtime.Session
	for _, id := range c.sm.sessions.IDs() {
		if s, _ := c.sm.sessions.Get(id); s.State == runtime.SessionOpen {
			out = append(out, c.sm.handle(id, c.inst))
		}
	}
	return out
}
