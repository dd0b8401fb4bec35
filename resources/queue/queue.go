// Package queue is Copycat's distributed FIFO queue of []byte elements,
// with a blocking Take that waits for an element without polling.
//
// Register QueueType with the members and open an instance by name:
//
//	srv, err := server.New(cfg, queue.QueueType)
//	...
//	q, err := queue.OpenBlocking(ctx, cli, "jobs")
//	_, err = q.Offer(ctx, []byte("job-1")) // true if handed straight to a waiting taker
//	e, err := q.Poll(ctx)                 // e.Ok false when empty
//	e, err = q.Peek(ctx)
//	n, err := q.Size(ctx)
//	v, err := q.Take(ctx)                 // waits until an element comes
//
// # Take
//
// Take is client-side: it sends an Await command. If the queue holds an
// element, Await removes and returns it. Otherwise the calling session is
// registered as a taker, in log order; an Offer that finds takers waiting
// does not enter the queue but is handed to the first taker whose session
// is open, by a Delivered event to that session alone. Each element is
// handed to exactly one taker, takers are served first come first served,
// and no element is lost:
//
//   - a Take whose ctx ends withdraws its registration (Withdraw); if the
//     element was handed over meanwhile, the handle keeps it and gives it to
//     its next Take;
//   - a taker whose session closes or expires leaves the takers in
//     SessionClosed, on every member at the same point of the log, so no
//     element is handed to a session that is gone.
//
// # Compaction
//
// The queue is a release-mode resource: its state is the Offer commits of
// the elements it holds and the Await commits of the waiting takers. An
// element polled, taken or handed over, and a taker served, withdrawn or
// gone, are released, as is every command that holds nothing once applied.
package queue

//go:generate go run ../../cmd/copycatgen

import (
	"github.com/copycat-go/copycat/runtime"
)

// Queue is the state machine of a replicated FIFO queue.
//
//copycat:resource name=copycat.queue compaction=release
type Queue struct {
	items  []item
	takers []runtime.Commit // Await commits waiting for an element, in log order
}

// item is an element and the Offer commit that holds it.
type item struct {
	commit runtime.Commit
	value  []byte
}

// Element is the answer of Poll and Peek: Ok is false when the queue was
// empty.
type Element struct {
	Value []byte
	Ok    bool
}

// Ticket is Await's answer. Ok says an element was taken at once (Value);
// otherwise the session waits for a Delivered event carrying Token, the
// index of the Await, which Withdraw takes to give up.
type Ticket struct {
	Token uint64
	Ok    bool
	Value []byte
}

// Delivered is published to a waiting taker's session when an offered
// element is handed to it.
//
//copycat:event
type Delivered struct {
	Token uint64
	Value []byte
}

// Offer appends value to the queue, or hands it to the first waiting taker.
// It reports whether it was handed over.
//
//copycat:command
func (q *Queue) Offer(c runtime.Commit, value []byte) bool {
	for len(q.takers) > 0 {
		t := q.takers[0]
		q.takers = q.takers[1:]
		t.Release()
		if t.Session().State() != runtime.SessionOpen {
			continue // a stand-in of a session gone: SessionClosed dropped it already
		}
		c.Release()
		t.Session().Publish(Delivered{Token: t.Index(), Value: value})
		return true
	}
	q.items = append(q.items, item{commit: c, value: value})
	return false
}

// Poll removes and returns the head of the queue.
//
//copycat:command
func (q *Queue) Poll(c runtime.Commit) Element {
	c.Release()
	if len(q.items) == 0 {
		return Element{}
	}
	return Element{Value: q.pop(), Ok: true}
}

// Peek returns the head of the queue without removing it.
//
//copycat:query
func (q *Queue) Peek() Element {
	if len(q.items) == 0 {
		return Element{}
	}
	return Element{Value: q.items[0].value, Ok: true}
}

// Size returns the number of elements in the queue.
//
//copycat:query
func (q *Queue) Size() int { return len(q.items) }

// Waiting returns the number of registered takers.
//
//copycat:query
func (q *Queue) Waiting() int { return len(q.takers) }

// Await takes the head of the queue if there is one; otherwise it registers
// the calling session as a taker, served in log order by Delivered events.
// Use BlockingQueue.Take rather than calling it yourself.
//
//copycat:command
func (q *Queue) Await(c runtime.Commit) Ticket {
	if len(q.items) > 0 && len(q.takers) == 0 {
		c.Release()
		return Ticket{Token: c.Index(), Ok: true, Value: q.pop()}
	}
	q.takers = append(q.takers, c)
	return Ticket{Token: c.Index()}
}

// Withdraw removes the calling session's taker registered with token and
// reports whether it was still waiting (false: it was served, or is not
// the session's).
//
//copycat:command
func (q *Queue) Withdraw(c runtime.Commit, token uint64) bool {
	c.Release()
	for i, t := range q.takers {
		if t.Index() == token && t.Session().ID() == c.Session().ID() {
			t.Release()
			q.takers = append(q.takers[:i], q.takers[i+1:]...)
			return true
		}
	}
	return false
}

// SessionOpened is half of runtime.SessionListener; opening changes nothing.
func (q *Queue) SessionOpened(runtime.Session) {}

// SessionClosed drops the takers of a session that ended.
func (q *Queue) SessionClosed(s runtime.Session, _ bool) {
	kept := q.takers[:0]
	for _, t := range q.takers {
		if t.Session().ID() == s.ID() {
			t.Release()
			continue
		}
		kept = append(kept, t)
	}
	clear(q.takers[len(kept):])
	q.takers = kept
}

// Delete releases every commit the instance holds.
func (q *Queue) Delete() {
	for _, it := range q.items {
		it.commit.Release()
	}
	for _, t := range q.takers {
		t.Release()
	}
	q.items, q.takers = nil, nil
}

func (q *Queue) pop() []byte {
	it := q.items[0]
	q.items[0] = item{}
	q.items = q.items[1:]
	it.commit.Release()
	return it.value
}
