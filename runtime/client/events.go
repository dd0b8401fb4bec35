package client

import (
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/protocol"
)

// eventState receives event batches in order, detects gaps, runs listeners
// on one goroutine, and lets responses wait until the events before them
// were delivered.
type eventState struct {
	c         *Client
	mu        sync.Mutex
	last      uint64 // newest batch accepted
	delivered uint64 // newest batch whose listeners have run
	queue     []*protocol.Message
	changed   chan struct{} // closed and replaced when delivered moves
	wake      chan struct{}
	stopped   chan struct{}
	resentAt  time.Time
}

// resendAfter is how long a response waits for missing events before the
// client asks for them again (copycat#255: a lost event must not block a
// client forever).
const resendAfter = 50 * time.Millisecond

func (e *eventState) init(c *Client) {
	e.c = c
	e.changed = make(chan struct{})
	e.wake = make(chan struct{}, 1)
	e.stopped = make(chan struct{})
	go e.dispatch()
}

func (e *eventState) stop() {
	select {
	case <-e.stopped:
	default:
		close(e.stopped)
	}
}

// received returns the index of the newest batch accepted, which the member
// need not send again.
func (e *eventState) received() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

func (e *eventState) receive(m *protocol.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case m.Index <= e.last:
		return // a duplicate after a resend
	case m.PrevIndex != e.last:
		e.requestResendLocked() // a gap: something was lost
		return
	}
	e.queue = append(e.queue, m)
	e.last = m.Index
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// requestResendLocked asks the connected member to push every batch after
// the last one accepted, at most once per resendAfter.
func (e *eventState) requestResendLocked() {
	if time.Since(e.resentAt) < resendAfter {
		return
	}
	e.resentAt = time.Now()
	c := e.c
	after := e.last
	go func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.conn != nil && c.session != 0 {
			c.conn.send(&protocol.Message{Type: protocol.ResendEvents, Session: c.session, EventAck: after})
		}
	}()
}

func (e *eventState) dispatch() {
	for {
		select {
		case <-e.wake:
		case <-e.stopped:
			return
		}
		for {
			e.mu.Lock()
			if len(e.queue) == 0 {
				e.mu.Unlock()
				break
			}
			b := e.queue[0]
			e.queue = e.queue[1:]
			e.mu.Unlock()
			for _, ev := range b.Events {
				for _, f := range e.c.listenersFor(ev.Resource, ev.Code) {
					f(ev.Data)
				}
			}
			e.mu.Lock()
			e.delivered = b.Index
			close(e.changed)
			e.changed = make(chan struct{})
			e.mu.Unlock()
		}
	}
}

// deliveredThrough reports whether the listeners of every batch up to index
// have run.
func (e *eventState) deliveredThrough(index uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.delivered >= index
}

// waitDelivered waits until the listeners of every batch up to index have
// run. Listeners therefore must not block on calls made through the same
// client: run those in a goroutine.
func (e *eventState) waitDelivered(index uint64) {
	for {
		e.mu.Lock()
		if e.delivered >= index {
			e.mu.Unlock()
			return
		}
		ch := e.changed
		missing := e.last < index
		e.mu.Unlock()
		select {
		case <-ch:
		case <-e.stopped:
			return
		case <-time.After(resendAfter):
			if missing {
				e.mu.Lock()
				e.requestResendLocked()
				e.mu.Unlock()
			}
		}
	}
}
