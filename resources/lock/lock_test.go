package lock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

func newMutex(t *testing.T, c *copycattest.Cluster, name string, opts ...client.Option) (*client.Client, *lock.Mutex) {
	t.Helper()
	cli := c.Client(opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := lock.NewMutex(ctx, cli, name)
	require.NoError(t, err)
	return cli, m
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestLockUnlockHolder(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	cli, m := newMutex(t, c, "basic")
	ctx := testCtx(t, 10*time.Second)

	info, err := m.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, lock.HolderInfo{}, info)

	tok, err := m.Lock(ctx)
	require.NoError(t, err)
	assert.NotZero(t, tok)
	assert.True(t, m.Held())
	assert.Equal(t, tok, m.Token())

	info, err = m.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, lock.HolderInfo{Token: uint64(tok), Session: cli.SessionID()}, info)

	require.NoError(t, m.Unlock(ctx))
	assert.False(t, m.Held())
	assert.ErrorIs(t, m.Unlock(ctx), lock.ErrNotLocked)

	info, err = m.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, lock.HolderInfo{}, info)

	tok2, ok, err := m.TryLock(ctx, 0)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Greater(t, tok2, tok)
	require.NoError(t, m.Unlock(ctx))
}

func TestFIFO(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 20*time.Second)
	_, first := newMutex(t, c, "fifo")
	_, err := first.Lock(ctx)
	require.NoError(t, err)

	const n = 4
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		_, m := newMutex(t, c, "fifo")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Lock(ctx); !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			assert.NoError(t, m.Unlock(ctx))
		}()
		// Wait until request i is queued before the next one asks.
		c.Eventually(10*time.Second, "request queued", func() bool {
			info, err := first.Holder(ctx)
			return err == nil && info.Waiters == i+1
		})
	}
	require.NoError(t, first.Unlock(ctx))
	wg.Wait()
	assert.Equal(t, []int{0, 1, 2, 3}, order)
}

func TestTryLockTimeout(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 10*time.Second)
	_, a := newMutex(t, c, "try")
	_, b := newMutex(t, c, "try")
	_, err := a.Lock(ctx)
	require.NoError(t, err)

	_, ok, err := b.TryLock(ctx, 0)
	require.NoError(t, err)
	assert.False(t, ok, "try-only on a held lock")

	start := time.Now()
	_, ok, err = b.TryLock(ctx, 300*time.Millisecond)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "the wait ran its course")

	info, err := a.Holder(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Waiters, "the timed-out request left the queue")

	// A timed wait that is granted in time.
	unlocked := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		unlocked <- a.Unlock(ctx)
	}()
	tok, ok, err := b.TryLock(ctx, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, <-unlocked)
	assert.True(t, ok)
	assert.True(t, b.Held())
	assert.NotZero(t, tok)
}

func TestTokensIncreaseAcrossLeaderCrash(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 30*time.Second)
	_, m := newMutex(t, c, "fence")
	var last lock.Token
	for round := range 3 {
		for range 3 {
			tok, err := m.Lock(ctx)
			require.NoError(t, err)
			assert.Greater(t, tok, last)
			last = tok
			require.NoError(t, m.Unlock(ctx))
		}
		lead := c.Leader()
		c.Crash(lead)
		c.Eventually(10*time.Second, "a new leader", func() bool { l := c.Leader(); return l != 0 && l != lead })
		if round < 2 {
			c.Restart(lead)
		}
	}
	tok, err := m.Lock(ctx)
	require.NoError(t, err)
	assert.Greater(t, tok, last)
}

func TestCutHolderLosesBeforeNextGrant(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 30*time.Second)
	timeout := 500 * time.Millisecond
	holderCli, holder := newMutex(t, c, "cut", client.WithSessionTimeout(timeout))
	_, next := newMutex(t, c, "cut", client.WithSessionTimeout(timeout))

	tok1, err := holder.Lock(ctx)
	require.NoError(t, err)

	var lostAt atomic.Int64
	holder.OnLost(func() { lostAt.Store(time.Now().UnixNano()) })
	// Watch Held as a careful holder would, before each step.
	var heldFalseAt atomic.Int64
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if !holder.Held() {
				heldFalseAt.Store(time.Now().UnixNano())
				return
			}
			select {
			case <-stopPoll:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	type result struct {
		tok lock.Token
		at  time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		tok, err := next.Lock(ctx)
		got <- result{tok, time.Now(), err}
	}()
	c.Eventually(10*time.Second, "the second request queued", func() bool {
		info, err := next.Holder(ctx)
		return err == nil && info.Waiters == 1
	})

	cutAt := time.Now()
	c.CutClient(holderCli)
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("the next waiter was never granted")
	}
	close(stopPoll)
	<-polled
	require.NoError(t, r.err)
	assert.Greater(t, r.tok, tok1)
	// Expiry needs up to a timeout without keep-alives (plus the interval
	// since the last one); allow for election ticks and race-detector slowness.
	assert.Less(t, r.at.Sub(cutAt), 3*timeout, "granted within about a session timeout")
	require.NotZero(t, lostAt.Load(), "OnLost ran")
	require.NotZero(t, heldFalseAt.Load(), "Held turned false")
	assert.Less(t, lostAt.Load(), r.at.UnixNano(), "OnLost before the next grant")
	assert.Less(t, heldFalseAt.Load(), r.at.UnixNano(), "Held false before the next grant")
	assert.False(t, holder.Held())
	assert.True(t, next.Held())
	t.Logf("cut→lost %v, cut→granted %v", time.Duration(lostAt.Load()-cutAt.UnixNano()), r.at.Sub(cutAt))
}

func TestMinorityCannotGrant(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 30*time.Second)
	lead := c.WaitLeader(10 * time.Second)
	for _, id := range c.IDs() {
		if id != lead {
			c.CutClients(id, true)
		}
	}
	// The client's session lives on the leader, the only member it reaches.
	_, m := newMutex(t, c, "minority")
	c.Isolate(lead)

	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := m.Lock(short)
	assert.Error(t, err, "the isolated old leader granted a lock")
	_, ok, err := m.TryLock(short, 0)
	assert.False(t, ok)
	assert.Error(t, err)
	assert.False(t, m.Held())

	c.Heal()
	for _, id := range c.IDs() {
		c.CutClients(id, false)
	}
	// The majority still works, and the withdrawn request did not linger.
	_, other := newMutex(t, c, "minority")
	tok, err := other.Lock(ctx)
	require.NoError(t, err)
	assert.NotZero(t, tok)
	require.NoError(t, other.Unlock(ctx))
}

func TestDeadWaiterLeavesQueue(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 30*time.Second)
	_, holder := newMutex(t, c, "dead")
	waiterCli, waiter := newMutex(t, c, "dead", client.WithSessionTimeout(300*time.Millisecond))
	_, last := newMutex(t, c, "dead")

	_, err := holder.Lock(ctx)
	require.NoError(t, err)
	go func() { _, _ = waiter.Lock(ctx) }()
	c.Eventually(10*time.Second, "waiter queued", func() bool {
		info, err := holder.Holder(ctx)
		return err == nil && info.Waiters == 1
	})
	got := make(chan lock.Token, 1)
	go func() {
		tok, err := last.Lock(ctx)
		assert.NoError(t, err)
		got <- tok
	}()
	c.Eventually(10*time.Second, "second waiter queued", func() bool {
		info, err := holder.Holder(ctx)
		return err == nil && info.Waiters == 2
	})

	c.CutClient(waiterCli)
	c.Eventually(10*time.Second, "dead waiter gone", func() bool {
		info, err := holder.Holder(ctx)
		return err == nil && info.Waiters == 1
	})
	require.NoError(t, holder.Unlock(ctx))
	select {
	case tok := <-got:
		assert.NotZero(t, tok)
	case <-ctx.Done():
		t.Fatal("the live waiter was not granted")
	}
	assert.False(t, waiter.Held())
}

func TestCancelledLockLeavesQueue(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 10*time.Second)
	_, a := newMutex(t, c, "cancel")
	_, b := newMutex(t, c, "cancel")
	_, err := a.Lock(ctx)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.Lock(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	c.Eventually(10*time.Second, "withdrawn request gone", func() bool {
		info, err := a.Holder(ctx)
		return err == nil && info.Waiters == 0
	})
	require.NoError(t, a.Unlock(ctx))
	info, err := a.Holder(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Token)
}

func TestMutualExclusion(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 60*time.Second)
	const clients, cycles = 8, 25
	var inside atomic.Int32
	var mu sync.Mutex
	var tokens []lock.Token
	var wg sync.WaitGroup
	for range clients {
		_, m := newMutex(t, c, "mutex")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range cycles {
				tok, err := m.Lock(ctx)
				if !assert.NoError(t, err) {
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
				inside.Add(-1)
				if err := m.Unlock(ctx); !assert.NoError(t, err) {
					return
				}
			}
		}()
	}
	wg.Wait()
	require.Len(t, tokens, clients*cycles)
	for i := 1; i < len(tokens); i++ {
		assert.Greater(t, tokens[i], tokens[i-1], "tokens increase in grant order")
	}
}

func TestStaleTokenCannotUnlock(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 10*time.Second)
	_, a := newMutex(t, c, "stale")
	_, b := newMutex(t, c, "stale")
	tok, err := a.Lock(ctx)
	require.NoError(t, err)
	err = b.Client().Release(ctx, uint64(tok))
	assert.True(t, errors.Is(err, lock.ErrNotHolder), "got %v", err)
	assert.True(t, a.Held())
}

func TestLostGrantIsReleased(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx := testCtx(t, 10*time.Second)
	cli := c.Client()
	// A margin as long as the session timeout: every grant is lost at once,
	// while the session lives on and the cluster still counts it as held.
	m, err := lock.NewMutex(ctx, cli, "lost", lock.WithMargin(cli.SessionTimeout()))
	require.NoError(t, err)
	lost := make(chan struct{}, 4)
	m.OnLost(func() { lost <- struct{}{} })

	tok, err := m.Lock(ctx)
	require.NoError(t, err)
	assert.False(t, m.Held())
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("OnLost did not run")
	}
	// Locking again frees the lost grant first instead of queueing behind it.
	tok2, err := m.Lock(ctx)
	require.NoError(t, err)
	assert.Greater(t, tok2, tok)
	<-lost
	assert.ErrorIs(t, m.Unlock(ctx), lock.ErrLost)
	info, err := m.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, lock.HolderInfo{}, info, "Unlock after a loss frees the lock")
}
