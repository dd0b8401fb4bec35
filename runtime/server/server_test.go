package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
	"github.com/copycat-go/copycat/runtime/internal/counter"
	"github.com/copycat-go/copycat/runtime/server"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestEndToEnd_CommandsQueriesErrors(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	cli := c.Client()
	ctr, err := counter.Open(ctx, cli, "hits")
	require.NoError(t, err)
	v, err := ctr.Add(ctx, 5)
	require.NoError(t, err)
	assert.Equal(t, int64(5), v)
	for _, cons := range []runtime.Consistency{runtime.Linearizable, runtime.LinearizableLease, runtime.Sequential} {
		v, err := ctr.Get(ctx, client.WithConsistency(cons))
		require.NoError(t, err, cons.String())
		assert.Equal(t, int64(5), v, cons.String())
	}
	_, err = ctr.Add(ctx, -10)
	assert.ErrorIs(t, err, counter.ErrNegative, "a declared error keeps its identity")
	// Same name, same instance; another name, another.
	again, err := counter.Open(ctx, cli, "hits")
	require.NoError(t, err)
	assert.Equal(t, ctr.Resource().ID(), again.Resource().ID())
	other, err := counter.Open(ctx, cli, "other")
	require.NoError(t, err)
	v, err = other.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(0), v)
	// Unknown type and operation: typed errors, the member unaffected.
	_, err = cli.Open(ctx, &runtime.ResourceType{Name: "nope"}, "x")
	assert.ErrorIs(t, err, runtime.ErrUnknownResourceType)
	_, err = ctr.Resource().Command(ctx, 99, nil)
	assert.ErrorIs(t, err, runtime.ErrUnknownOperation)
	v, err = ctr.Add(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(6), v)
	// Delete.
	require.NoError(t, other.Resource().Delete(ctx))
	_, err = other.Get(ctx)
	assert.ErrorIs(t, err, runtime.ErrUnknownResource)
}

// A leader crash in the middle of a stream of commands from many clients
// loses no acknowledged command, applies none twice, and keeps each
// client's order.
func TestEndToEnd_LeaderCrashMidStream(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 60*time.Second)
	const clients, each = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	started := make(chan struct{}, clients*each)
	for i := range clients {
		cli := c.Client()
		ctr, err := counter.Open(ctx, cli, "stream")
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(-1)
			for range each {
				v, err := ctr.Add(ctx, 1)
				if err != nil {
					errs <- err
					return
				}
				if v <= last {
					errs <- errors.New("a client's results went backwards")
					return
				}
				last = v
				started <- struct{}{}
			}
			_ = i
		}()
	}
	for range clients * each / 3 {
		<-started
	}
	lead := c.Leader()
	c.Crash(lead)
	c.WaitLeader(10 * time.Second)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	c.Restart(lead)
	cli := c.Client()
	ctr, err := counter.Open(ctx, cli, "stream")
	require.NoError(t, err)
	v, err := ctr.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(clients*each), v, "every command applied exactly once")
}

// A partitioned old leader cannot answer a linearizable query with stale
// state: the client ends up reading the new leader's writes.
func TestEndToEnd_PartitionedLeaderNoStaleRead(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 30*time.Second)
	reader := c.Client()
	rc, err := counter.Open(ctx, reader, "x")
	require.NoError(t, err)
	_, err = rc.Add(ctx, 1)
	require.NoError(t, err)
	old := c.Leader()
	c.Isolate(old)
	c.Eventually(10*time.Second, "a new leader", func() bool { l := c.Leader(); return l != 0 && l != old })
	c.CutClients(old, true)
	writer := c.Client()
	wc, err := counter.Open(ctx, writer, "x")
	require.NoError(t, err)
	_, err = wc.Add(ctx, 10)
	require.NoError(t, err)
	for _, cons := range []runtime.Consistency{runtime.Linearizable, runtime.LinearizableLease} {
		v, err := rc.Get(ctx, client.WithConsistency(cons))
		require.NoError(t, err)
		assert.Equal(t, int64(11), v, "%s read after the write completed", cons)
	}
}

// Sequential reads never go backwards for a session, across a leader change.
func TestEndToEnd_SequentialReadsMonotonic(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 30*time.Second)
	w := c.Client()
	wc, err := counter.Open(ctx, w, "m")
	require.NoError(t, err)
	r := c.Client()
	rc, err := counter.Open(ctx, r, "m")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if _, err := wc.Add(ctx, 1); err != nil {
				return
			}
			if i == 80 {
				c.Crash(c.Leader())
			}
		}
	}()
	last := int64(-1)
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		v, err := rc.Get(ctx, client.WithConsistency(runtime.Sequential))
		require.NoError(t, err)
		require.GreaterOrEqual(t, v, last, "sequential read went backwards")
		last = v
	}
}

// Events reach every session exactly once and in order, across a leader
// crash, and before the response of any later command.
func TestEndToEnd_EventsAcrossLeaderChange(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 30*time.Second)
	lis := c.Client()
	lc, err := counter.Open(ctx, lis, "ev")
	require.NoError(t, err)
	var mu sync.Mutex
	var got []int64
	lc.OnChanged(func(e counter.Changed) {
		mu.Lock()
		got = append(got, e.Value)
		mu.Unlock()
	})
	w := c.Client()
	wc, err := counter.Open(ctx, w, "ev")
	require.NoError(t, err)
	const n = 150
	for i := 1; i <= n; i++ {
		_, err := wc.Add(ctx, 1)
		require.NoError(t, err)
		if i == n/2 {
			c.Crash(c.Leader())
		}
	}
	// The listener's own command: its response comes after every earlier event.
	v, err := lc.Add(ctx, 0)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, n+1, "no loss, no duplicate")
	for i := range n {
		require.Equal(t, int64(i+1), got[i], "in order")
	}
	assert.Equal(t, v, got[n])
}

// An idle client keeps its session well past its timeout.
func TestEndToEnd_IdleClientKeepsSession(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	cli := c.Client(client.WithSessionTimeout(300 * time.Millisecond))
	ctr, err := counter.Open(ctx, cli, "idle")
	require.NoError(t, err)
	sid := cli.SessionID()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		require.NotEqual(t, client.StateExpired, cli.State())
		time.Sleep(50 * time.Millisecond)
	}
	_, err = ctr.Add(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, sid, cli.SessionID())
}

// A client that dies without closing its session is expired by the leader,
// and the resource's hook runs on every member.
func TestEndToEnd_DeadClientExpires(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	obs := c.Client()
	oc, err := counter.Open(ctx, obs, "exp")
	require.NoError(t, err)
	var states []client.State
	var smu sync.Mutex
	dying, err := c.NewClient(client.WithSessionTimeout(300*time.Millisecond), client.WithStateListener(func(s client.State) {
		smu.Lock()
		states = append(states, s)
		smu.Unlock()
	}))
	require.NoError(t, err)
	dc, err := counter.Open(ctx, dying, "exp")
	require.NoError(t, err)
	sid := dying.SessionID()
	// The client's process "dies": it can no longer reach any member.
	c.CutClient(dying)
	c.Eventually(10*time.Second, "the session to expire on every member", func() bool {
		for _, id := range c.IDs() {
			srv := c.Member(id).Server()
			if srv == nil || srv.HasSession(sid) {
				return false
			}
		}
		return true
	})
	n, err := oc.Expired(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, int64(1), "SessionClosed(expired) ran")
	// The dead client, reaching the cluster again, learns it expired; it is
	// never given a new session silently.
	c.ReconnectClient(dying)
	c.Eventually(10*time.Second, "the client to report expiry", func() bool { return dying.State() == client.StateExpired })
	_, err = dc.Add(ctx, 1)
	assert.ErrorIs(t, err, runtime.ErrSessionExpired)
	smu.Lock()
	assert.Contains(t, states, client.StateExpired)
	smu.Unlock()
}

// Timers fire on log time, the same on every member.
func TestEndToEnd_Timers(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	ctx := ctxT(t, 20*time.Second)
	ctr, err := counter.Open(ctx, c.Client(), "t")
	require.NoError(t, err)
	require.NoError(t, ctr.AddLater(ctx, 7, 100*time.Millisecond))
	v, err := ctr.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(0), v)
	c.Eventually(5*time.Second, "the timer to fire", func() bool {
		// Each query's read entry does not advance time; keep-alive entries do.
		v, err := ctr.Get(ctx)
		return err == nil && v == 7
	})
}

func TestServer_ConfigValidation(t *testing.T) {
	_, err := server.New(server.Config{})
	require.Error(t, err)
	for _, want := range []string{"ID must not be 0", "ClusterID must be set", "Addr or Listener must be set", "DataDir or Storage must be set"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = server.New(server.Config{ID: 1, ClusterID: "c", Addr: "127.0.0.1:0", DataDir: t.TempDir(), MinSessionTimeout: time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "twice the election timeout")
}
