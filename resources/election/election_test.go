package election_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/election"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

func newElector(t *testing.T, c *copycattest.Cluster, name string, opts ...client.Option) (*client.Client, *election.Elector) {
	t.Helper()
	cli := c.Client(opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := election.NewElector(ctx, cli, name)
	require.NoError(t, err)
	return cli, e
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// campaignAsync runs Campaign in the background.
type elected struct {
	term election.Term
	at   time.Time
	err  error
}

func campaignAsync(ctx context.Context, e *election.Elector, candidate string) <-chan elected {
	ch := make(chan elected, 1)
	go func() {
		term, err := e.Campaign(ctx, candidate)
		ch <- elected{term, time.Now(), err}
	}()
	return ch
}

func waitElected(t *testing.T, ctx context.Context, ch <-chan elected) elected {
	t.Helper()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r
	case <-ctx.Done():
		t.Fatal("never elected")
	}
	return elected{}
}

func waitingIs(ctx context.Context, e *election.Elector, n int) func() bool {
	return func() bool {
		info, err := e.Leader(ctx)
		return err == nil && info.Waiting == n
	}
}

func TestCampaignLeaderProclaimResign(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 10*time.Second)
	cliA, a := newElector(t, c, "basic")
	_, b := newElector(t, c, "basic")

	info, err := a.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, election.LeaderInfo{}, info)
	assert.ErrorIs(t, a.Proclaim(ctx, []byte("x")), election.ErrNotLeader)

	term, err := a.Campaign(ctx, "node-a")
	require.NoError(t, err)
	assert.NotZero(t, term)
	assert.True(t, a.IsLeader())
	assert.Equal(t, term, a.Term())
	again, err := a.Campaign(ctx, "node-a")
	require.NoError(t, err)
	assert.Equal(t, term, again, "campaigning while leading keeps the term")

	require.NoError(t, a.Proclaim(ctx, []byte("10.0.0.1:80")))
	info, err = b.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, election.LeaderInfo{Candidate: "node-a", Term: uint64(term), Session: cliA.SessionID(), Value: []byte("10.0.0.1:80")}, info)

	// The cluster guards Proclaim by term and session.
	assert.ErrorIs(t, b.Proclaim(ctx, []byte("y")), election.ErrNotLeader)
	assert.ErrorIs(t, b.Client().Proclaim(ctx, uint64(term), []byte("y")), election.ErrNotLeader, "another session")
	assert.ErrorIs(t, a.Client().Proclaim(ctx, uint64(term)+1, []byte("y")), election.ErrNotLeader, "another term")
	info, err = a.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, []byte("10.0.0.1:80"), info.Value)

	assert.ErrorIs(t, b.Client().Resign(ctx, uint64(term)), election.ErrNotCandidate, "a stale or foreign term cannot resign")
	require.NoError(t, a.Resign(ctx))
	assert.False(t, a.IsLeader())
	assert.ErrorIs(t, a.Resign(ctx), election.ErrNotElected)
	info, err = a.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, election.LeaderInfo{}, info)

	term2, err := b.Campaign(ctx, "node-b")
	require.NoError(t, err)
	assert.Greater(t, term2, term)
	assert.ErrorIs(t, a.Client().Proclaim(ctx, uint64(term), []byte("old")), election.ErrNotLeader, "an old term")
}

func TestHandoverOnResign(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 60*time.Second)
	_, a := newElector(t, c, "handover")
	_, b := newElector(t, c, "handover")

	cur, next := a, b
	term, err := cur.Campaign(ctx, "first")
	require.NoError(t, err)
	const rounds = 20
	var lat []time.Duration
	for i := range rounds {
		got := campaignAsync(ctx, next, "next")
		c.Eventually(10*time.Second, "the next candidate waits", waitingIs(ctx, cur, 1))
		start := time.Now()
		require.NoError(t, cur.Resign(ctx))
		r := waitElected(t, ctx, got)
		lat = append(lat, r.at.Sub(start))
		assert.Greater(t, r.term, term, "round %d", i)
		term = r.term
		assert.True(t, next.IsLeader())
		assert.False(t, cur.IsLeader())
		cur, next = next, cur
	}
	slices.Sort(lat)
	t.Logf("handover on resign (Resign call → next Campaign returns), %d rounds: min %v median %v p90 %v max %v",
		rounds, lat[0], lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
}

func TestFIFO(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 30*time.Second)
	_, first := newElector(t, c, "fifo")
	_, err := first.Campaign(ctx, "first")
	require.NoError(t, err)

	const n = 4
	var mu sync.Mutex
	var order []int
	var terms []election.Term
	var wg sync.WaitGroup
	for i := range n {
		_, e := newElector(t, c, "fifo")
		wg.Add(1)
		go func() {
			defer wg.Done()
			term, err := e.Campaign(ctx, "c")
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			order = append(order, i)
			terms = append(terms, term)
			mu.Unlock()
			assert.NoError(t, e.Resign(ctx))
		}()
		c.Eventually(10*time.Second, "candidate waits", waitingIs(ctx, first, i+1))
	}
	require.NoError(t, first.Resign(ctx))
	wg.Wait()
	assert.Equal(t, []int{0, 1, 2, 3}, order)
	assert.True(t, slices.IsSorted(terms))
}

func TestCutLeaderIsReplaced(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 30*time.Second)
	timeout := 500 * time.Millisecond
	cliA, a := newElector(t, c, "cut", client.WithSessionTimeout(timeout))
	_, b := newElector(t, c, "cut", client.WithSessionTimeout(timeout))

	termA, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	var lostAt atomic.Int64
	a.OnLost(func() { lostAt.Store(time.Now().UnixNano()) })

	got := campaignAsync(ctx, b, "b")
	c.Eventually(10*time.Second, "b waits", waitingIs(ctx, b, 1))

	cutAt := time.Now()
	c.CutClient(cliA)
	r := waitElected(t, ctx, got)
	assert.Greater(t, r.term, termA, "the new leader's term is larger")
	assert.True(t, b.IsLeader())
	require.NotZero(t, lostAt.Load(), "the old leader's OnLost ran")
	assert.Less(t, lostAt.Load(), r.at.UnixNano(), "OnLost before the next election")
	assert.False(t, a.IsLeader())
	assert.Equal(t, election.Term(0), a.Term())
	assert.Less(t, r.at.Sub(cutAt), 3*timeout, "replaced within about a session timeout")
	t.Logf("cut→lost %v, cut→new leader %v", time.Duration(lostAt.Load()-cutAt.UnixNano()), r.at.Sub(cutAt))

	info, err := b.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", info.Candidate)
	assert.Equal(t, uint64(r.term), info.Term)

	// Back on the network, the old leader learns its session expired, and
	// its term can no longer proclaim.
	c.ReconnectClient(cliA)
	c.Eventually(10*time.Second, "the old session reported expired", func() bool {
		return cliA.State() == client.StateExpired
	})
	assert.ErrorIs(t, a.Proclaim(ctx, []byte("stale")), election.ErrNotLeader)
}

func TestObserve(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 30*time.Second)
	_, obs := newElector(t, c, "observe")
	cliA, a := newElector(t, c, "observe", client.WithSessionTimeout(500*time.Millisecond))
	cliB, b := newElector(t, c, "observe", client.WithSessionTimeout(500*time.Millisecond))

	var mu sync.Mutex
	var events []election.Changed
	stop, err := obs.Observe(ctx, func(e election.Changed) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})
	require.NoError(t, err)
	count := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(events) >= n }
	}

	termA, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	require.NoError(t, a.Proclaim(ctx, []byte("va")))
	gotB := campaignAsync(ctx, b, "b")
	c.Eventually(10*time.Second, "b waits", waitingIs(ctx, a, 1))
	require.NoError(t, a.Resign(ctx))
	termB := waitElected(t, ctx, gotB).term
	require.NoError(t, b.Proclaim(ctx, []byte("vb")))

	// A leader whose session dies is replaced at once by the next candidate.
	gotA := campaignAsync(ctx, a, "a2")
	c.Eventually(10*time.Second, "a waits", waitingIs(ctx, b, 1))
	c.CutClient(cliB)
	termA2 := waitElected(t, ctx, gotA).term
	require.NoError(t, a.Resign(ctx))
	c.Eventually(10*time.Second, "six events", count(6))
	require.NoError(t, stop(ctx))

	mu.Lock()
	defer mu.Unlock()
	sa, sb := cliA.SessionID(), cliB.SessionID()
	want := []election.Changed{
		{Leader: election.LeaderInfo{Candidate: "a", Term: uint64(termA), Session: sa}},
		{Leader: election.LeaderInfo{Candidate: "a", Term: uint64(termA), Session: sa, Value: []byte("va")}, Proclaimed: true},
		{Leader: election.LeaderInfo{Candidate: "b", Term: uint64(termB), Session: sb}},
		{Leader: election.LeaderInfo{Candidate: "b", Term: uint64(termB), Session: sb, Value: []byte("vb")}, Proclaimed: true},
		{Leader: election.LeaderInfo{Candidate: "a2", Term: uint64(termA2), Session: sa}},
		{},
	}
	require.Len(t, events, len(want))
	for i := range want {
		assert.Equal(t, want[i].Proclaimed, events[i].Proclaimed, "event %d", i)
		assert.Equal(t, want[i].Leader.Candidate, events[i].Leader.Candidate, "event %d", i)
		assert.Equal(t, want[i].Leader.Term, events[i].Leader.Term, "event %d", i)
		assert.Equal(t, want[i].Leader.Session, events[i].Leader.Session, "event %d", i)
		assert.Equal(t, string(want[i].Leader.Value), string(events[i].Leader.Value), "event %d", i)
	}
	assert.Less(t, termA, termB)
	assert.Less(t, termB, termA2)
}

func TestCancelledCampaignLeavesQueue(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 10*time.Second)
	_, a := newElector(t, c, "cancel")
	_, b := newElector(t, c, "cancel")
	_, err := a.Campaign(ctx, "a")
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.Campaign(short, "b")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	c.Eventually(10*time.Second, "withdrawn campaign gone", waitingIs(ctx, a, 0))
	require.NoError(t, a.Resign(ctx))
	info, err := a.Leader(ctx)
	require.NoError(t, err)
	assert.Zero(t, info.Term)
}

// Terms are log indexes: they keep increasing when the cluster's own Raft
// leader crashes between elections, and the election's leader (whose session
// survives the crash) keeps leading.
func TestTermsIncreaseAcrossRaftLeaderCrash(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 60*time.Second)
	_, a := newElector(t, c, "crash")
	_, b := newElector(t, c, "crash")
	term, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	cur, next := a, b
	for i := range 3 {
		crashed := c.Leader()
		c.Crash(crashed)
		c.WaitLeader(10 * time.Second)
		info, err := cur.Leader(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(term), info.Term, "round %d: the election's leader survived the Raft leader's crash", i)
		assert.True(t, cur.IsLeader())
		got := campaignAsync(ctx, next, "next")
		c.Eventually(10*time.Second, "the next candidate waits", waitingIs(ctx, cur, 1))
		require.NoError(t, cur.Resign(ctx))
		r := waitElected(t, ctx, got)
		assert.Greater(t, r.term, term, "round %d: terms only grow", i)
		term = r.term
		c.Restart(crashed)
		cur, next = next, cur
	}
}

// A candidate whose client reaches only a minority cannot be elected.
func TestMinorityCannotElect(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx := testCtx(t, 60*time.Second)
	cli, e := newElector(t, c, "minority")
	old := c.Leader()
	c.Isolate(old)
	for _, id := range c.IDs() {
		c.CutClients(id, id != old)
	}
	// The client's connection may still be to another member: cut it so it
	// reconnects to the isolated old leader, the only member it can reach.
	c.CutClient(cli)
	c.ReconnectClient(cli)
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := e.Campaign(short, "isolated")
	assert.Error(t, err, "no election without a majority")
	assert.False(t, e.IsLeader())
	c.Heal()
	for _, id := range c.IDs() {
		c.CutClients(id, false)
	}
	_, other := newElector(t, c, "minority")
	term, err := other.Campaign(ctx, "majority")
	require.NoError(t, err)
	assert.NotZero(t, term)
	info, err := other.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, "majority", info.Candidate, "the minority's attempt left no trace")
}
