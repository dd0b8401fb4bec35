//go:build unix

package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/internal/counter"
)

// Three members in three OS processes on loopback TCP with bolt logs (fsync
// on). Clients in this process add to a counter while the test SIGKILLs the
// leader, waits for a new one, restarts the killed member from its data
// directory, then SIGSTOPs a follower and SIGCONTs it. Every acknowledged
// Add must be applied exactly once: the values the Adds returned are exactly
// 1..N where N is the number of acknowledged Adds, and the counter ends at
// N. Each restarted or resumed member must catch up: a Sequential read
// pinned to it, once it has applied the leader's commit index, returns N.
func TestProcesses_KillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three member processes")
	}
	start := time.Now()
	pc := newProcCluster(t, 3, nil)
	defer func() {
		if t.Failed() {
			pc.dumpLogs()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))

	// Writers: 4 clients (sessions), 2 goroutines each, so each session also
	// has commands pipelined.
	const clients, perClient = 4, 2
	var (
		acked   atomic.Int64
		mu      sync.Mutex
		values  []int64
		writeWG sync.WaitGroup
		stop    = make(chan struct{})
		errs    = make(chan error, clients*perClient)
		handles []*counter.Client
		sids    []uint64
	)
	for i := range clients {
		cli, err := client.Connect(ctx, pc.Addrs(), client.WithClusterID(pc.id), client.WithClientID(fmt.Sprintf("writer-%d", i)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		ctr, err := counter.Open(ctx, cli, "procs")
		require.NoError(t, err)
		handles = append(handles, ctr)
		sids = append(sids, cli.SessionID())
	}
	resource := handles[0].Resource().ID()
	for i := range clients * perClient {
		ctr := handles[i/perClient]
		writeWG.Add(1)
		go func() {
			defer writeWG.Done()
			last := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				// No per-call deadline shorter than the test's: a command
				// whose call gave up could still apply later, and then the
				// count of acknowledged Adds would not be exact.
				v, err := ctr.Add(ctx, 1)
				if err != nil {
					errs <- fmt.Errorf("writer %d: Add: %w", i, err)
					return
				}
				if v <= last {
					errs <- fmt.Errorf("writer %d: Add returned %d after %d: not in program order", i, v, last)
					return
				}
				last = v
				mu.Lock()
				values = append(values, v)
				mu.Unlock()
				acked.Add(1)
			}
		}()
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		writeWG.Wait()
	}
	defer stopWriters()
	waitAcks := func(n int64, what string) {
		t.Helper()
		waitFor(t, 20*time.Second, fmt.Sprintf("%d acknowledged Adds (%s)", n, what), func() bool {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			return acked.Load() >= n
		})
	}
	// caughtUp waits until member id has applied the leader's commit index,
	// then reads the counter pinned to it.
	caughtUp := func(id uint64, what string) {
		t.Helper()
		_, lst := pc.leader()
		target := lst.Commit
		waitFor(t, 15*time.Second, fmt.Sprintf("member %d to apply index %d (%s)", id, target, what), func() bool {
			st, err := pc.status(id)
			return err == nil && st.Applied >= target
		})
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		v, idx, err := pinnedGet(rctx, pc.procs[id].addr, pc.id, resource, target)
		require.NoError(t, err, "pinned read on member %d", id)
		require.GreaterOrEqual(t, idx, target)
		require.Positive(t, v)
		t.Logf("%s: member %d applied index %d, counter %d (acknowledged so far %d)", what, id, idx, v, acked.Load())
	}

	// 1. SIGKILL the leader mid-stream.
	waitAcks(200, "before the kill")
	old, ost := pc.leader()
	require.NotZero(t, old)
	killedAt := acked.Load()
	tKill := time.Now()
	pc.kill(old)
	newLead := pc.waitLeader(10*time.Second, old)
	nst, err := pc.status(newLead)
	require.NoError(t, err)
	require.Greater(t, nst.Term, ost.Term)
	t.Logf("killed leader %d (term %d) after %d acks; member %d leads in term %d after %v",
		old, ost.Term, killedAt, newLead, nst.Term, time.Since(tKill).Round(time.Millisecond))
	waitAcks(killedAt+200, "under the new leader")
	t.Logf("writes resumed: %d acks %v after the kill", acked.Load()-killedAt, time.Since(tKill).Round(time.Millisecond))

	// 2. Restart the killed member from its data directory; it catches up.
	pc.restart(old)
	caughtUp(old, "after restart")

	// 3. SIGSTOP the follower that is not the restarted member, for at least
	// an election timeout (the default 200–400 ms) and 200 more Adds: the
	// leader and the restarted member carry the quorum meanwhile.
	lead, _ := pc.leader()
	var paused uint64
	for _, id := range pc.IDs() {
		if id != lead && id != old {
			paused = id
		}
	}
	if paused == 0 { // the restarted member leads (it can win a later election)
		for _, id := range pc.IDs() {
			if id != lead {
				paused = id
			}
		}
	}
	pc.signal(paused, syscall.SIGSTOP)
	stoppedAt, tStop := acked.Load(), time.Now()
	waitAcks(stoppedAt+200, fmt.Sprintf("with member %d stopped", paused))
	waitFor(t, 5*time.Second, "an election timeout to pass with the follower stopped", func() bool {
		return time.Since(tStop) >= 500*time.Millisecond
	})
	pc.signal(paused, syscall.SIGCONT)
	t.Logf("member %d was stopped for %v while %d Adds were acknowledged", paused, time.Since(tStop).Round(time.Millisecond), acked.Load()-stoppedAt)
	waitAcks(acked.Load()+100, "after SIGCONT")
	caughtUp(paused, "after SIGCONT")

	// 4. Stop writing and check exactly-once.
	stopWriters()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n := acked.Load()
	mu.Lock()
	got := slices.Clone(values)
	mu.Unlock()
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("the Adds' results are not exactly 1..%d: position %d holds %d (an Add lost or applied twice)", n, i, v)
		}
	}
	final, err := handles[0].Get(ctx, client.WithConsistency(runtime.Linearizable))
	require.NoError(t, err)
	require.Equal(t, n, final, "the counter equals the number of acknowledged Adds")

	// Every member, the restarted and the resumed ones included, holds the
	// same state.
	_, lst := pc.leader()
	for _, id := range pc.IDs() {
		waitFor(t, 10*time.Second, fmt.Sprintf("member %d to apply index %d", id, lst.Commit), func() bool {
			st, err := pc.status(id)
			return err == nil && st.Applied >= lst.Commit
		})
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		v, _, err := pinnedGet(rctx, pc.procs[id].addr, pc.id, resource, lst.Commit)
		rcancel()
		require.NoError(t, err, "member %d", id)
		require.Equal(t, n, v, "member %d's counter", id)
	}
	// The sessions survived every fault.
	for i, h := range handles {
		require.Equal(t, sids[i], h.Resource().Client().SessionID())
		require.NotEqual(t, client.StateExpired, h.Resource().Client().State())
	}
	t.Logf("%d Adds acknowledged, each applied exactly once; all 3 members at %d; %v since the start",
		n, final, time.Since(start).Round(time.Millisecond))

	for _, h := range handles {
		require.NoError(t, h.Resource().Client().Close())
	}
	t.Logf("clients closed; %v since the start", time.Since(start).Round(time.Millisecond))
	// A clean stop of every member, so that a race in a member (under -race)
	// is reported (the race detector's exit takes a second: in parallel).
	var stopWG sync.WaitGroup
	exitErrs := make([]error, len(pc.IDs()))
	for i, id := range pc.IDs() {
		stopWG.Add(1)
		go func() { defer stopWG.Done(); exitErrs[i] = pc.terminate(id, 10*time.Second) }()
	}
	stopWG.Wait()
	for i, err := range exitErrs {
		require.NoError(t, err, "member %d's exit", pc.IDs()[i])
	}
	t.Logf("clients closed and members stopped cleanly; %v since the start", time.Since(start).Round(time.Millisecond))
	pc.checkRaces()
}
