//go:build !copycatgen

package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
)

// Token is a fencing token: the log index of the request that was granted
// the lock. Tokens of successive holders of one lock strictly increase,
// across leader changes and restarts; pass the token to the storage you
// guard and have it refuse tokens lower than the highest it has seen.
type Token uint64

// ErrLost is returned by Unlock when this Mutex had lost the lock (its
// session could have expired) before Unlock was called: work done after
// the loss was not protected.
var ErrLost = errors.New("lock: lost before unlock")

// ErrNotLocked is returned by Unlock on a Mutex that does not hold the lock.
var ErrNotLocked = errors.New("lock: unlock of unlocked mutex")

// MutexOption configures NewMutex.
type MutexOption func(*Mutex)

// WithMargin sets how long before the earliest moment the cluster could
// expire the session the Mutex reports the lock lost (see Mutex.Held). The
// default is DefaultMargin of the session timeout.
func WithMargin(d time.Duration) MutexOption { return func(m *Mutex) { m.margin = d } }

// DefaultMargin returns the default safety margin for a session timeout:
// a tenth of it, and at least 50ms. The margin absorbs the difference
// between the client's and the leader's clock rates over one timeout
// (quartz drifts by well under 0.1%) and, mostly, the delay between the
// moment the bound passes and the moment the watchdog runs (scheduling,
// GC pauses), so that Held turns false and OnLost runs before any other
// client can be granted the lock.
func DefaultMargin(sessionTimeout time.Duration) time.Duration {
	return max(sessionTimeout/10, 50*time.Millisecond)
}

// Mutex is a client's handle on a distributed lock: a fair (FIFO) mutual
// exclusion lock shared by every client that opens the same name. A Mutex
// is safe for concurrent use; like sync.Mutex it is held by at most one
// Lock call at a time, and a Lock call on a held Mutex waits its turn in
// the cluster's queue.
type Mutex struct {
	lc     *LockClient
	cli    *client.Client
	margin time.Duration
	stop   []func() // event listener cancels

	mu      sync.Mutex
	waits   map[uint64]chan bool // queued tickets: true on Granted, false on TimedOut
	early   map[uint64]bool      // outcomes that arrived before their ticket
	pending int                  // Acquire commands without a response
	token   Token                // the request the cluster granted us, 0 if none
	held    bool                 // token is held and not (yet) lost
	gen     uint64               // bumped on every grant and release
	unwatch chan struct{}        // closed to stop the current grant's watchdog
	onLost  map[*lostFunc]struct{}
}

type lostFunc struct{ f func() }

// NewMutex opens (creating it if needed) the lock named name through c.
func NewMutex(ctx context.Context, c *client.Client, name string, opts ...MutexOption) (*Mutex, error) {
	lc, err := OpenLock(ctx, c, name)
	if err != nil {
		return nil, fmt.Errorf("lock: open %q: %w", name, err)
	}
	m := &Mutex{
		lc: lc, cli: c, margin: -1,
		waits: map[uint64]chan bool{}, early: map[uint64]bool{}, onLost: map[*lostFunc]struct{}{},
	}
	for _, o := range opts {
		o(m)
	}
	if m.margin < 0 {
		m.margin = DefaultMargin(c.SessionTimeout())
	}
	// Listeners run on the client's event goroutine: they only record.
	m.stop = append(m.stop,
		lc.OnGranted(func(e Granted) { m.outcome(e.Token, true) }),
		lc.OnTimedOut(func(e TimedOut) { m.outcome(e.Token, false) }))
	return m, nil
}

// Name returns the lock's name.
func (m *Mutex) Name() string { return m.lc.Resource().Name() }

// Client returns the generated client underneath.
func (m *Mutex) Client() *LockClient { return m.lc }

// Close stops the Mutex's event delivery; a held lock stays held until
// Unlock or the end of the session. Close does not unlock.
func (m *Mutex) Close() error {
	for _, f := range m.stop {
		f()
	}
	return m.lc.Close()
}

func (m *Mutex) outcome(ticket uint64, granted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.waits[ticket]; ok {
		delete(m.waits, ticket)
		ch <- granted // buffered
		return
	}
	if m.pending > 0 {
		// The ticket's Acquire response may still be on its way (events and
		// responses travel separately); keep the outcome for it.
		m.early[ticket] = granted
	}
}

// Lock waits until the lock is granted to this Mutex and returns its
// fencing token. Requests are granted in the order the cluster received
// them. If ctx ends first, the request leaves the queue (or, if the grant
// crossed the cancellation, the lock is released) and ctx's error returned.
func (m *Mutex) Lock(ctx context.Context) (Token, error) {
	tok, ok, err := m.acquire(ctx, -1)
	if err == nil && !ok {
		err = errors.New("lock: request refused") // cannot happen: untimed requests wait
	}
	return tok, err
}

// TryLock takes the lock if it is granted within wait, measured in the
// cluster's log time (so every member agrees when the wait ran out); wait 0
// takes it only if it is free with nobody queued. It reports false when the
// wait ran out.
func (m *Mutex) TryLock(ctx context.Context, wait time.Duration) (Token, bool, error) {
	if wait < 0 {
		wait = 0
	}
	return m.acquire(ctx, wait)
}

func (m *Mutex) acquire(ctx context.Context, wait time.Duration) (Token, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	m.mu.Lock()
	if m.token != 0 && !m.held {
		// A grant lost but not unlocked may still be ours in the cluster
		// (the session survived a silence): free it first, or this
		// request would queue behind it for good.
		stale := m.token
		m.endGrantLocked()
		m.mu.Unlock()
		if err := m.lc.Release(ctx, uint64(stale)); err != nil && !errors.Is(err, ErrNotHolder) {
			return 0, false, fmt.Errorf("lock: release lost grant: %w", err)
		}
		m.mu.Lock()
	}
	m.pending++
	m.mu.Unlock()

	// The command runs to completion even if ctx ends: only its answer says
	// which request to withdraw. It is started, not called, so that its
	// answer wakes this goroutine directly.
	call, err := m.lc.StartAcquire(wait)
	if err != nil {
		err = fmt.Errorf("lock: acquire %q: %w", m.Name(), err)
		m.mu.Lock()
		m.pending--
		m.forgetEarlyLocked()
		m.mu.Unlock()
		return 0, false, err
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		go func() {
			t, err := call.Result()
			m.mu.Lock()
			m.pending--
			m.forgetEarlyLocked()
			m.mu.Unlock()
			if err == nil && (t.Granted || t.Queued) {
				m.withdraw(t.Token)
			}
		}()
		return 0, false, ctx.Err()
	}

	t, err := call.Result()
	m.mu.Lock()
	m.pending--
	if err != nil {
		m.forgetEarlyLocked()
		m.mu.Unlock()
		return 0, false, err
	}
	if t.Granted {
		m.forgetEarlyLocked()
		m.grantLocked(Token(t.Token))
		m.mu.Unlock()
		return Token(t.Token), true, nil
	}
	if !t.Queued {
		m.forgetEarlyLocked()
		m.mu.Unlock()
		return 0, false, nil
	}
	ch := make(chan bool, 1)
	if granted, ok := m.early[t.Token]; ok {
		delete(m.early, t.Token)
		ch <- granted
	} else {
		m.waits[t.Token] = ch
	}
	m.forgetEarlyLocked()
	m.mu.Unlock()

	// The grant comes by event; the ticker only notices a session that
	// ended, whose events will never come.
	check := time.NewTicker(max(m.cli.SessionTimeout()/4, 10*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case granted := <-ch:
			if !granted {
				return 0, false, nil
			}
			m.mu.Lock()
			m.grantLocked(Token(t.Token))
			m.mu.Unlock()
			return Token(t.Token), true, nil
		case <-ctx.Done():
			m.mu.Lock()
			delete(m.waits, t.Token)
			m.mu.Unlock()
			// Withdraw the request; if it was granted meanwhile this
			// releases the lock, which no caller was told it held.
			go m.withdraw(t.Token)
			return 0, false, ctx.Err()
		case <-check.C:
			switch m.cli.State() {
			case client.StateExpired:
				return 0, false, runtime.ErrSessionExpired
			case client.StateClosed:
				return 0, false, client.ErrClosed
			}
		}
	}
}

// forgetEarlyLocked drops outcomes kept for answers no longer awaited
// (events of other handles on the same lock and session).
func (m *Mutex) forgetEarlyLocked() {
	if m.pending == 0 {
		clear(m.early)
	}
}

// withdraw releases a request this Mutex will not use, in the background.
func (m *Mutex) withdraw(ticket uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), max(m.cli.SessionTimeout(), time.Second))
	defer cancel()
	_ = m.lc.Release(ctx, ticket) // failing, the session's end frees it
}

// grantLocked records a grant and starts its watchdog.
func (m *Mutex) grantLocked(t Token) {
	m.endGrantLocked()
	m.token, m.held = t, true
	m.unwatch = make(chan struct{})
	go m.watch(m.gen, m.unwatch)
}

// endGrantLocked forgets the current grant and stops its watchdog.
func (m *Mutex) endGrantLocked() {
	m.token, m.held = 0, false
	m.gen++
	if m.unwatch != nil {
		close(m.unwatch)
		m.unwatch = nil
	}
}

// deadline is the earliest moment the cluster could expire the session,
// less the margin: the cluster cannot expire it before the last
// acknowledged keep-alive's send time plus the session timeout.
func (m *Mutex) deadline() time.Time {
	return m.cli.Confirmed().Add(m.cli.SessionTimeout() - m.margin)
}

// watch marks the lock lost when the session can no longer be known alive.
func (m *Mutex) watch(gen uint64, unwatch <-chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-unwatch:
			return
		}
		d := m.deadline()
		st := m.cli.State()
		if st == client.StateExpired || st == client.StateClosed || !time.Now().Before(d) {
			m.lose(gen)
			return
		}
		// Wake at the deadline, then look again: a keep-alive acknowledged
		// meanwhile moves it. The wake-up is bounded so that a client that
		// expired or closed is noticed soon.
		t.Reset(min(time.Until(d), max(m.cli.SessionTimeout()/4, 10*time.Millisecond)))
	}
}

// lose marks the grant of generation gen lost and runs the OnLost callbacks.
func (m *Mutex) lose(gen uint64) {
	m.mu.Lock()
	if m.gen != gen || !m.held {
		m.mu.Unlock()
		return
	}
	m.held = false
	fs := make([]func(), 0, len(m.onLost))
	for l := range m.onLost {
		fs = append(fs, l.f)
	}
	m.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// Held reports whether this Mutex holds the lock and its session is known
// alive: it turns false, at the latest, margin before the earliest moment
// the cluster could expire the session and grant the lock to another
// client. A holder that checks Held before each protected step never
// overlaps the next holder (except by what happens between the check and
// the step: use the Token to fence that). Once false it stays false until
// the next grant.
func (m *Mutex) Held() bool {
	m.mu.Lock()
	held := m.held
	m.mu.Unlock()
	if !held {
		return false
	}
	st := m.cli.State()
	return st != client.StateExpired && st != client.StateClosed && time.Now().Before(m.deadline())
}

// Token returns the fencing token of the current grant, or 0.
func (m *Mutex) Token() Token {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		return 0
	}
	return m.token
}

// OnLost calls f (on the Mutex's watchdog goroutine, holding no lock) each
// time the Mutex loses a grant before Unlock: its session went unconfirmed
// for the session timeout less the margin, expired or closed. Call Unlock
// after a loss: if the session survived, the cluster still counts the grant
// as this Mutex's and frees it only then (or at the end of the session).
func (m *Mutex) OnLost(f func()) (cancel func()) {
	l := &lostFunc{f: f}
	m.mu.Lock()
	m.onLost[l] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.onLost, l)
		m.mu.Unlock()
	}
}

// Unlock releases the lock. It returns ErrNotLocked if the Mutex holds no
// grant, and ErrLost (after releasing what the cluster may still hold) if
// the grant had been lost.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	tok, held := m.token, m.held
	if tok == 0 {
		m.mu.Unlock()
		return ErrNotLocked
	}
	lost := !held || !time.Now().Before(m.deadline())
	m.endGrantLocked()
	m.mu.Unlock()
	err := m.lc.Release(ctx, uint64(tok))
	switch {
	case lost:
		return ErrLost
	case errors.Is(err, ErrNotHolder):
		return ErrLost
	case err != nil:
		return fmt.Errorf("lock: unlock %q: %w", m.Name(), err)
	}
	return nil
}

// Holder asks the cluster (linearizably, unless an option says otherwise)
// who holds the lock.
func (m *Mutex) Holder(ctx context.Context, opts ...client.QueryOption) (HolderInfo, error) {
	return m.lc.Holder(ctx, opts...)
}
