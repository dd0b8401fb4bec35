//go:build !copycatgen

package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
)

// BlockingQueue is a QueueClient with a blocking Take. It is safe for
// concurrent use; concurrent Takes are served in the order the cluster
// logged them, each with its own element.
type BlockingQueue struct {
	*QueueClient
	cli    *client.Client
	cancel func() // the Delivered listener

	mu      sync.Mutex
	waits   map[uint64]chan []byte // takers waiting for their Delivered event
	early   map[uint64][]byte      // deliveries that came before their Await's answer
	pending int                    // Await commands without an answer
	gaveUp  map[uint64]bool        // takers whose Take ended; their element, if any, goes to spare
	spare   [][]byte               // elements handed to this handle that no Take returned yet
}

// OpenBlocking opens (creating it if needed) the queue named name through c.
func OpenBlocking(ctx context.Context, c *client.Client, name string) (*BlockingQueue, error) {
	qc, err := OpenQueue(ctx, c, name)
	if err != nil {
		return nil, fmt.Errorf("queue: open %q: %w", name, err)
	}
	b := &BlockingQueue{
		QueueClient: qc, cli: c,
		waits: map[uint64]chan []byte{}, early: map[uint64][]byte{}, gaveUp: map[uint64]bool{},
	}
	b.cancel = qc.OnDelivered(b.delivered)
	return b, nil
}

// Close stops event delivery. Takers still waiting in the cluster leave
// with the session, or are withdrawn by their Take's ctx.
func (b *BlockingQueue) Close() error {
	b.cancel()
	return b.QueueClient.Close()
}

// delivered runs on the client's event goroutine: it only records.
func (b *BlockingQueue) delivered(e Delivered) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.waits[e.Token] != nil:
		b.waits[e.Token] <- e.Value // buffered
		delete(b.waits, e.Token)
	case b.gaveUp[e.Token]:
		delete(b.gaveUp, e.Token)
		b.spare = append(b.spare, e.Value)
	case b.pending > 0:
		// The Await's answer may still be on its way (events and responses
		// travel separately); keep the element for it.
		b.early[e.Token] = e.Value
	}
	// Otherwise the token is another handle's on the same session.
}

// Take removes and returns the head of the queue, waiting until an element
// is offered if it is empty. If ctx ends first, the wait is withdrawn and
// ctx's error returned; an element handed over as ctx ended is kept by the
// handle for its next Take, never lost. Take also returns when the session
// expires or the client closes.
func (b *BlockingQueue) Take(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if len(b.spare) > 0 {
		v := b.spare[0]
		b.spare = b.spare[1:]
		b.mu.Unlock()
		return v, nil
	}
	b.pending++
	b.mu.Unlock()

	// The command runs to completion even if ctx ends: only its answer says
	// which taker to withdraw.
	type answer struct {
		t   Ticket
		err error
	}
	ans := make(chan answer, 1)
	go func() {
		t, err := b.Await(context.WithoutCancel(ctx))
		ans <- answer{t, err}
	}()
	var a answer
	select {
	case a = <-ans:
	case <-ctx.Done():
		go func() {
			a := <-ans
			b.mu.Lock()
			b.pending--
			if a.err == nil && a.t.Ok {
				b.spare = append(b.spare, a.t.Value)
			}
			var early bool
			if a.err == nil && !a.t.Ok {
				var v []byte
				if v, early = b.early[a.t.Token]; early {
					delete(b.early, a.t.Token)
					b.spare = append(b.spare, v)
				} else {
					b.gaveUp[a.t.Token] = true
				}
			}
			b.forgetEarlyLocked()
			b.mu.Unlock()
			if a.err == nil && !a.t.Ok && !early {
				b.withdraw(a.t.Token)
			}
		}()
		return nil, ctx.Err()
	}

	b.mu.Lock()
	b.pending--
	if a.err != nil || a.t.Ok {
		b.forgetEarlyLocked()
		b.mu.Unlock()
		return a.t.Value, a.err
	}
	token := a.t.Token
	ch := make(chan []byte, 1)
	if v, ok := b.early[token]; ok {
		delete(b.early, token)
		ch <- v
	} else {
		b.waits[token] = ch
	}
	b.forgetEarlyLocked()
	b.mu.Unlock()

	// The element comes by event; the ticker only notices a session that
	// ended, whose events will never come.
	check := time.NewTicker(max(b.cli.SessionTimeout()/4, 10*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case v := <-ch:
			return v, nil
		case <-ctx.Done():
			b.giveUp(token, ch)
			return nil, ctx.Err()
		case <-check.C:
			switch b.cli.State() {
			case client.StateExpired:
				b.giveUp(token, ch)
				return nil, runtime.ErrSessionExpired
			case client.StateClosed:
				b.giveUp(token, ch)
				return nil, client.ErrClosed
			}
		}
	}
}

// giveUp ends a Take waiting on token: an element already delivered goes to
// spare, a later one will, and the taker is withdrawn in the background.
func (b *BlockingQueue) giveUp(token uint64, ch chan []byte) {
	b.mu.Lock()
	delete(b.waits, token)
	select {
	case v := <-ch:
		b.spare = append(b.spare, v)
		b.mu.Unlock()
		return
	default:
	}
	b.gaveUp[token] = true
	b.mu.Unlock()
	go b.withdraw(token)
}

// withdraw withdraws a taker no Take waits for. If it was served already,
// its Delivered event came before Withdraw's answer and went to spare.
func (b *BlockingQueue) withdraw(token uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), max(b.cli.SessionTimeout(), time.Second))
	defer cancel()
	ok, err := b.Withdraw(ctx, token)
	if err == nil {
		b.mu.Lock()
		delete(b.gaveUp, token)
		b.mu.Unlock()
	}
	_ = ok // failing, the session's end removes the taker
}

// forgetEarlyLocked drops deliveries kept for answers no longer awaited
// (events of other handles on the same queue and session).
func (b *BlockingQueue) forgetEarlyLocked() {
	if b.pending == 0 {
		clear(b.early)
	}
}
