//go:build !copycatgen

package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
)

// Term identifies one leadership: the log index of the Campaign request
// that was elected. Terms of successive leaders of one election strictly
// increase, across leader changes and restarts of the cluster; use the term
// as a fencing token for what the leader writes.
type Term uint64

// ErrLost is returned by Resign when this Elector had lost its leadership
// (its session could have expired) before Resign was called: work done
// after the loss was not protected.
var ErrLost = errors.New("election: leadership lost before resign")

// ErrNotElected is returned by Resign on an Elector that holds no term.
var ErrNotElected = errors.New("election: resign without a term")

// Option configures NewElector.
type Option func(*Elector)

// WithMargin sets how long before the earliest moment the cluster could
// expire the session the Elector reports its leadership lost (see
// Elector.IsLeader). The default is DefaultMargin of the session timeout.
func WithMargin(d time.Duration) Option { return func(e *Elector) { e.margin = d } }

// DefaultMargin returns the default safety margin for a session timeout: a
// tenth of it, and at least 50ms, as for locks (see lock.DefaultMargin).
func DefaultMargin(sessionTimeout time.Duration) time.Duration {
	return max(sessionTimeout/10, 50*time.Millisecond)
}

// Elector is a client's handle on a leader election shared by every client
// that opens the same name. It runs at most one campaign at a time (a
// Campaign while elected returns the current term). An Elector is safe for
// concurrent use.
type Elector struct {
	ec     *ElectionClient
	cli    *client.Client
	margin time.Duration
	stop   []func() // event listener cancels

	mu      sync.Mutex
	waits   map[uint64]chan struct{} // waiting campaigns, signalled on Elected
	early   map[uint64]struct{}      // Elected events that arrived before their ticket
	pending int                      // Campaign commands without a response
	term    Term                     // the campaign the cluster elected, 0 if none
	leading bool                     // term is held and not (yet) lost
	gen     uint64                   // bumped on every election and resignation
	unwatch chan struct{}            // closed to stop the current term's watchdog
	onLost  map[*lostFunc]struct{}
}

type lostFunc struct{ f func() }

// NewElector opens (creating it if needed) the election named name through c.
func NewElector(ctx context.Context, c *client.Client, name string, opts ...Option) (*Elector, error) {
	ec, err := OpenElection(ctx, c, name)
	if err != nil {
		return nil, fmt.Errorf("election: open %q: %w", name, err)
	}
	e := &Elector{
		ec: ec, cli: c, margin: -1,
		waits: map[uint64]chan struct{}{}, early: map[uint64]struct{}{}, onLost: map[*lostFunc]struct{}{},
	}
	for _, o := range opts {
		o(e)
	}
	if e.margin < 0 {
		e.margin = DefaultMargin(c.SessionTimeout())
	}
	// The listener runs on the client's event goroutine: it only records.
	e.stop = append(e.stop, ec.OnElected(func(ev Elected) { e.elected(ev.Term) }))
	return e, nil
}

// Name returns the election's name.
func (e *Elector) Name() string { return e.ec.Resource().Name() }

// Client returns the generated client underneath.
func (e *Elector) Client() *ElectionClient { return e.ec }

// Close stops the Elector's event delivery; a leadership stays until
// Resign or the end of the session. Close does not resign.
func (e *Elector) Close() error {
	for _, f := range e.stop {
		f()
	}
	return e.ec.Close()
}

func (e *Elector) elected(term uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.waits[term]; ok {
		delete(e.waits, term)
		ch <- struct{}{} // buffered
		return
	}
	if e.pending > 0 {
		// The Campaign response may still be on its way (events and
		// responses travel separately); keep the event for it.
		e.early[term] = struct{}{}
	}
}

// Campaign runs for leadership under the candidate name and waits until it
// is elected: campaigns are elected in the order the cluster logged them,
// each when the leader before it resigns or its session ends. It returns
// the term of the leadership. On an Elector that already leads it returns
// the current term. If ctx ends first, the campaign is withdrawn (or, if the
// election crossed the cancellation, resigned) and ctx's error returned.
func (e *Elector) Campaign(ctx context.Context, candidate string) (Term, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	alive := e.valid() // outside e.mu: the client is never called holding it
	e.mu.Lock()
	if e.leading && alive {
		t := e.term
		e.mu.Unlock()
		return t, nil
	}
	if e.term != 0 {
		// A leadership lost but not resigned may still be ours in the
		// cluster (the session survived a silence): resign it first, or
		// this campaign would wait behind it for good.
		stale := e.term
		e.endTermLocked()
		e.mu.Unlock()
		if err := e.ec.Resign(ctx, uint64(stale)); err != nil && !errors.Is(err, ErrNotCandidate) {
			return 0, fmt.Errorf("election: resign lost term: %w", err)
		}
		e.mu.Lock()
	}
	e.pending++
	e.mu.Unlock()

	// The command runs to completion even if ctx ends: only its answer says
	// which campaign to withdraw. It is started, not called, so that its
	// answer wakes this goroutine directly.
	call, err := e.ec.StartCampaign(candidate)
	if err != nil {
		err = fmt.Errorf("election: campaign in %q: %w", e.Name(), err)
		e.mu.Lock()
		e.pending--
		e.forgetEarlyLocked()
		e.mu.Unlock()
		return 0, err
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		go func() {
			t, err := call.Result()
			e.mu.Lock()
			e.pending--
			e.forgetEarlyLocked()
			e.mu.Unlock()
			if err == nil {
				e.withdraw(t.Term)
			}
		}()
		return 0, ctx.Err()
	}

	t, err := call.Result()
	e.mu.Lock()
	e.pending--
	if err != nil {
		e.forgetEarlyLocked()
		e.mu.Unlock()
		return 0, err
	}
	if t.Elected {
		e.forgetEarlyLocked()
		e.electLocked(Term(t.Term))
		e.mu.Unlock()
		return Term(t.Term), nil
	}
	ch := make(chan struct{}, 1)
	if _, ok := e.early[t.Term]; ok {
		delete(e.early, t.Term)
		ch <- struct{}{}
	} else {
		e.waits[t.Term] = ch
	}
	e.forgetEarlyLocked()
	e.mu.Unlock()

	// The election comes by event; the ticker only notices a session that
	// ended, whose events will never come.
	check := time.NewTicker(max(e.cli.SessionTimeout()/4, 10*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case <-ch:
			e.mu.Lock()
			e.electLocked(Term(t.Term))
			e.mu.Unlock()
			return Term(t.Term), nil
		case <-ctx.Done():
			e.mu.Lock()
			delete(e.waits, t.Term)
			e.mu.Unlock()
			// Withdraw the campaign; if it was elected meanwhile this
			// resigns, which no caller was told it held.
			go e.withdraw(t.Term)
			return 0, ctx.Err()
		case <-check.C:
			switch e.cli.State() {
			case client.StateExpired:
				return 0, runtime.ErrSessionExpired
			case client.StateClosed:
				return 0, client.ErrClosed
			}
		}
	}
}

// forgetEarlyLocked drops events kept for answers no longer awaited.
func (e *Elector) forgetEarlyLocked() {
	if e.pending == 0 {
		clear(e.early)
	}
}

// withdraw resigns a campaign this Elector will not use, in the background.
func (e *Elector) withdraw(term uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), max(e.cli.SessionTimeout(), time.Second))
	defer cancel()
	_ = e.ec.Resign(ctx, term) // failing, the session's end frees it
}

// electLocked records an election and starts its watchdog.
func (e *Elector) electLocked(t Term) {
	e.endTermLocked()
	e.term, e.leading = t, true
	e.unwatch = make(chan struct{})
	go e.watch(e.gen, e.unwatch)
}

// endTermLocked forgets the current term and stops its watchdog.
func (e *Elector) endTermLocked() {
	e.term, e.leading = 0, false
	e.gen++
	if e.unwatch != nil {
		close(e.unwatch)
		e.unwatch = nil
	}
}

// deadline is the earliest moment the cluster could expire the session,
// less the margin.
func (e *Elector) deadline() time.Time {
	return e.cli.Confirmed().Add(e.cli.SessionTimeout() - e.margin)
}

// valid reports whether the session is still known alive.
func (e *Elector) valid() bool {
	st := e.cli.State()
	return st != client.StateExpired && st != client.StateClosed && time.Now().Before(e.deadline())
}

// watch marks the leadership lost when the session can no longer be known
// alive.
func (e *Elector) watch(gen uint64, unwatch <-chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-unwatch:
			return
		}
		d := e.deadline()
		st := e.cli.State()
		if st == client.StateExpired || st == client.StateClosed || !time.Now().Before(d) {
			e.lose(gen)
			return
		}
		t.Reset(min(time.Until(d), max(e.cli.SessionTimeout()/4, 10*time.Millisecond)))
	}
}

// lose marks the term of generation gen lost and runs the OnLost callbacks.
func (e *Elector) lose(gen uint64) {
	e.mu.Lock()
	if e.gen != gen || !e.leading {
		e.mu.Unlock()
		return
	}
	e.leading = false
	fs := make([]func(), 0, len(e.onLost))
	for l := range e.onLost {
		fs = append(fs, l.f)
	}
	e.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// IsLeader reports whether this Elector leads and its session is known
// alive: it turns false, at the latest, margin before the earliest moment
// the cluster could expire the session and elect another candidate. Once
// false it stays false until the next election.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	leading := e.leading
	e.mu.Unlock()
	return leading && e.valid()
}

// Term returns the term of the current leadership, or 0.
func (e *Elector) Term() Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return 0
	}
	return e.term
}

// OnLost calls f (on the Elector's watchdog goroutine, holding no lock)
// each time the Elector loses a leadership before Resign: its session went
// unconfirmed for the session timeout less the margin, expired or closed.
// Call Resign after a loss: if the session survived, the cluster still
// counts this Elector as the leader until then (or the end of the session).
func (e *Elector) OnLost(f func()) (cancel func()) {
	l := &lostFunc{f: f}
	e.mu.Lock()
	e.onLost[l] = struct{}{}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.onLost, l)
		e.mu.Unlock()
	}
}

// Resign steps down; the next waiting candidate is elected at once. It
// returns ErrNotElected if the Elector holds no term, and ErrLost (after
// resigning what the cluster may still hold) if the leadership had been
// lost.
func (e *Elector) Resign(ctx context.Context) error {
	alive := e.valid()
	e.mu.Lock()
	t := e.term
	if t == 0 {
		e.mu.Unlock()
		return ErrNotElected
	}
	lost := !e.leading || !alive
	e.endTermLocked()
	e.mu.Unlock()
	err := e.ec.Resign(ctx, uint64(t))
	switch {
	case lost:
		return ErrLost
	case errors.Is(err, ErrNotCandidate):
		return ErrLost
	case err != nil:
		return fmt.Errorf("election: resign %q: %w", e.Name(), err)
	}
	return nil
}

// Proclaim sets the value the leader publishes (a leader's address, say).
// It returns ErrNotLeader if this Elector does not lead, or no longer knows
// its session alive, or the cluster has another leader.
func (e *Elector) Proclaim(ctx context.Context, value []byte) error {
	alive := e.valid()
	e.mu.Lock()
	t, ok := e.term, e.leading && alive
	e.mu.Unlock()
	if !ok {
		return ErrNotLeader
	}
	return e.ec.Proclaim(ctx, uint64(t), value)
}

// Leader asks the cluster (linearizably, unless an option says otherwise)
// who leads: candidate name, term, session and value.
func (e *Elector) Leader(ctx context.Context, opts ...client.QueryOption) (LeaderInfo, error) {
	return e.ec.Leader(ctx, opts...)
}

// Observe calls f with a Changed event for every change of leader or value
// from now on, in order (see ElectionClient.Watch); stop ends it.
func (e *Elector) Observe(ctx context.Context, f func(Changed)) (stop func(context.Context) error, err error) {
	return e.ec.Watch(ctx, f)
}
