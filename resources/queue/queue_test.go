package queue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/queue"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

var sequential = client.WithConsistency(runtime.Sequential)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, c *copycattest.Cluster, name string, opts ...client.Option) (*client.Client, *queue.BlockingQueue) {
	t.Helper()
	cli := c.Client(opts...)
	q, err := queue.OpenBlocking(testContext(t), cli, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return cli, q
}

func TestOperations(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	_, q := open(t, c, "ops")

	e, err := q.Poll(ctx)
	require.NoError(t, err)
	assert.False(t, e.Ok, "empty")
	e, err = q.Peek(ctx)
	require.NoError(t, err)
	assert.False(t, e.Ok)

	for _, v := range []string{"a", "b", "c"} {
		handed, err := q.Offer(ctx, []byte(v))
		require.NoError(t, err)
		assert.False(t, handed, "nobody waits")
	}
	n, err := q.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	e, err = q.Peek(ctx, sequential)
	require.NoError(t, err)
	assert.Equal(t, queue.Element{Value: []byte("a"), Ok: true}, e)
	e, err = q.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, queue.Element{Value: []byte("a"), Ok: true}, e)
	v, err := q.Take(ctx) // an element is there: no wait
	require.NoError(t, err)
	assert.Equal(t, []byte("b"), v)
	n, err = q.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// Take on an empty queue waits for the next Offer.
	e, err = q.Poll(ctx)
	require.NoError(t, err)
	assert.Equal(t, []byte("c"), e.Value)
	got := make(chan []byte, 1)
	go func() {
		v, err := q.Take(ctx)
		assert.NoError(t, err)
		got <- v
	}()
	c.Eventually(10*time.Second, "taker registered", func() bool {
		n, err := q.Waiting(ctx)
		return err == nil && n == 1
	})
	handed, err := q.Offer(ctx, []byte("d"))
	require.NoError(t, err)
	assert.True(t, handed)
	assert.Equal(t, []byte("d"), <-got)
	n, err = q.Size(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a handed element never enters the queue")
	n, err = q.Waiting(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// TestConcurrentTakers: takers on several clients and several goroutines of
// one handle each get a distinct element; none is lost or duplicated.
func TestConcurrentTakers(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	const clients, perClient, extra = 3, 4, 5
	var handles []*queue.BlockingQueue
	for range clients {
		_, q := open(t, c, "conc")
		handles = append(handles, q)
	}
	_, producer := open(t, c, "conc")

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, q := range handles {
		for range perClient {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := q.Take(ctx)
				if assert.NoError(t, err) {
					mu.Lock()
					seen[string(v)]++
					mu.Unlock()
				}
			}()
		}
	}
	c.Eventually(10*time.Second, "every taker registered", func() bool {
		n, err := producer.Waiting(ctx)
		return err == nil && n == clients*perClient
	})
	total := clients*perClient + extra
	var pwg sync.WaitGroup
	for p := range 2 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := p; i < total; i += 2 {
				_, err := producer.Offer(ctx, []byte(fmt.Sprint(i)))
				assert.NoError(t, err)
			}
		}()
	}
	pwg.Wait()
	wg.Wait()

	n, err := producer.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, extra, n, "the elements beyond the takers stay queued")
	for {
		e, err := producer.Poll(ctx)
		require.NoError(t, err)
		if !e.Ok {
			break
		}
		seen[string(e.Value)]++
	}
	require.Len(t, seen, total, "no element lost")
	for v, k := range seen {
		assert.Equal(t, 1, k, "element %s delivered once", v)
	}
}

// TestTakersFIFO: takers are served in the order they registered.
func TestTakersFIFO(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	_, producer := open(t, c, "fifo")
	var got []chan []byte
	for i := range 3 {
		_, q := open(t, c, "fifo")
		ch := make(chan []byte, 1)
		got = append(got, ch)
		go func() {
			v, err := q.Take(ctx)
			assert.NoError(t, err)
			ch <- v
		}()
		c.Eventually(10*time.Second, "taker registered", func() bool {
			n, err := producer.Waiting(ctx)
			return err == nil && n == i+1
		})
	}
	for i := range 3 {
		_, err := producer.Offer(ctx, []byte{byte(i)})
		require.NoError(t, err)
	}
	for i, ch := range got {
		assert.Equal(t, []byte{byte(i)}, <-ch, "taker %d", i)
	}
}

// TestTakeCancelWithdraws: a Take whose ctx ends leaves the takers, so the
// next element stays in the queue.
func TestTakeCancelWithdraws(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	_, q := open(t, c, "cancel")
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := q.Take(tctx)
		done <- err
	}()
	c.Eventually(10*time.Second, "taker registered", func() bool {
		n, err := q.Waiting(ctx)
		return err == nil && n == 1
	})
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	c.Eventually(10*time.Second, "taker withdrawn", func() bool {
		n, err := q.Waiting(ctx)
		return err == nil && n == 0
	})
	handed, err := q.Offer(ctx, []byte("x"))
	require.NoError(t, err)
	assert.False(t, handed)
	n, err := q.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// A ctx already ended takes nothing.
	_, err = q.Take(tctx)
	assert.ErrorIs(t, err, context.Canceled)
	n, err = q.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// TestCancelRaceKeepsElement cancels Takes while elements are offered: each
// element either stays in the queue or is returned by some Take of the
// handle (a cancelled Take's element goes to the next one); none is lost.
func TestCancelRaceKeepsElement(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	_, q := open(t, c, "race")
	_, producer := open(t, c, "race")
	const n = 20
	var got [][]byte
	for i := range n {
		tctx, cancel := context.WithCancel(ctx)
		res := make(chan []byte, 1)
		var done atomic.Bool
		go func() {
			v, err := q.Take(tctx)
			if err != nil {
				v = nil
			}
			done.Store(true)
			res <- v
		}()
		if i%2 == 0 {
			// Registered, or served at once from what the handle kept.
			c.Eventually(10*time.Second, "taker registered", func() bool {
				w, err := producer.Waiting(ctx)
				return done.Load() || err == nil && w == 1
			})
		}
		_, err := producer.Offer(ctx, []byte{byte(i)})
		require.NoError(t, err)
		cancel()
		if v := <-res; v != nil {
			got = append(got, v)
		}
		c.Eventually(10*time.Second, "taker gone", func() bool {
			w, err := producer.Waiting(ctx)
			return err == nil && w == 0
		})
	}
	// What the handle kept comes out of its next Takes, then the queue's.
	for len(got) < n {
		v, err := q.Take(ctx)
		require.NoError(t, err)
		got = append(got, v)
	}
	seen := map[byte]bool{}
	for _, v := range got {
		require.Len(t, v, 1)
		assert.False(t, seen[v[0]], "element %d twice", v[0])
		seen[v[0]] = true
	}
	assert.Len(t, seen, n)
	size, err := producer.Size(ctx)
	require.NoError(t, err)
	assert.Zero(t, size)
}

// TestDeadTakerLeaves: a taker whose session expires leaves, and the next
// element goes to the next live taker.
func TestDeadTakerLeaves(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	deadCli, dead := open(t, c, "dead", client.WithSessionTimeout(copycattest.MinSessionTimeout))
	_, live := open(t, c, "dead")
	deadErr := make(chan error, 1)
	go func() {
		_, err := dead.Take(ctx)
		deadErr <- err
	}()
	c.Eventually(10*time.Second, "dead taker registered", func() bool {
		n, err := live.Waiting(ctx)
		return err == nil && n == 1
	})
	got := make(chan []byte, 1)
	go func() {
		v, err := live.Take(ctx)
		assert.NoError(t, err)
		got <- v
	}()
	c.Eventually(10*time.Second, "live taker registered", func() bool {
		n, err := live.Waiting(ctx)
		return err == nil && n == 2
	})
	c.CutClient(deadCli)
	c.Eventually(10*time.Second, "dead taker gone", func() bool {
		n, err := live.Waiting(ctx)
		return err == nil && n == 1
	})
	_, err := live.Offer(ctx, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, []byte("x"), <-got)
	c.ReconnectClient(deadCli)
	assert.ErrorIs(t, <-deadErr, runtime.ErrSessionExpired)
}

// TestTakeAcrossLeaderCrash: a waiting taker gets the element offered after
// the leader crashed, from the next leader.
func TestTakeAcrossLeaderCrash(t *testing.T) {
	ctx := testContext(t)
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	_, taker := open(t, c, "crash")
	_, producer := open(t, c, "crash")
	got := make(chan []byte, 2)
	for range 2 {
		go func() {
			v, err := taker.Take(ctx)
			assert.NoError(t, err)
			got <- v
		}()
	}
	c.Eventually(10*time.Second, "takers registered", func() bool {
		n, err := producer.Waiting(ctx)
		return err == nil && n == 2
	})
	old := c.Leader()
	c.Crash(old)
	_, err := producer.Offer(ctx, []byte("a"))
	require.NoError(t, err)
	c.Restart(old)
	_, err = producer.Offer(ctx, []byte("b"))
	require.NoError(t, err)
	a, b := <-got, <-got
	assert.ElementsMatch(t, [][]byte{[]byte("a"), []byte("b")}, [][]byte{a, b})
	assert.NotEqual(t, old, c.Leader())
	n, err := producer.Size(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}
