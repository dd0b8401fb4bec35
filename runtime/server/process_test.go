//go:build unix

package server_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	start := time.Now()
	pc, ctx := threeProcesses(t)
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))

	// Writers: 4 clients (sessions), 2 goroutines each, so each session also
	// has commands pipelined.
	ad := startAdders(t, ctx, pc, 4, 2)
	acked, resource := &ad.acked, ad.resource()
	waitAcks := func(n int64, what string) { t.Helper(); ad.waitAcks(n, 20*time.Second, what) }
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

	// 4. Stop writing and check exactly-once, on every member (the
	// restarted and the resumed ones included), with every session intact.
	n := ad.check(ctx)
	final := n
	t.Logf("%d Adds acknowledged, each applied exactly once; all 3 members at %d; %v since the start",
		n, final, time.Since(start).Round(time.Millisecond))

	ad.closeClients()
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

// Every member SIGKILLed mid-stream, one after another, then all restarted
// from their data directories: the cluster recovers every acknowledged Add
// from the members' journals (the entries of the head segments exist only
// there until flushed to bolt), elects a leader, goes on, and each
// acknowledged Add is applied exactly once on every member.
func TestProcesses_KillAllAndRestart(t *testing.T) {
	pc, ctx := threeProcesses(t)
	ad := startAdders(t, ctx, pc, 3, 2)
	ad.waitAcks(300, 20*time.Second, "before the kills")
	_, before := pc.leader()
	killedAt := ad.acked.Load()
	for _, id := range pc.IDs() {
		pc.kill(id)
	}
	tKill := time.Now()
	for _, id := range pc.IDs() {
		pc.restart(id)
	}
	lead := pc.waitLeader(15*time.Second, 0)
	waitFor(t, 10*time.Second, fmt.Sprintf("the new leader to commit index %d, committed before the kills", before.Commit), func() bool {
		_, st := pc.leader()
		return st.Commit >= before.Commit
	})
	ad.waitAcks(killedAt+300, 20*time.Second, "after the restart")
	t.Logf("all members killed after %d acks (commit %d); member %d leads again, %d more acks %v after the kills",
		killedAt, before.Commit, lead, ad.acked.Load()-killedAt, time.Since(tKill).Round(time.Millisecond))
	n := ad.check(ctx)
	t.Logf("%d Adds acknowledged, each applied exactly once on every member", n)
	ad.closeClients()
	for _, id := range pc.IDs() {
		require.NoError(t, pc.terminate(id, 10*time.Second), "member %d's exit", id)
	}
	pc.checkRaces()
}

// threeProcesses starts three member processes for a test (skipped with
// -short), prints their logs if it fails, and gives it a context bounding
// its calls.
func threeProcesses(t *testing.T) (*procCluster, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts three member processes")
	}
	pc := newProcCluster(t, 3, nil)
	t.Cleanup(func() {
		if t.Failed() {
			pc.dumpLogs()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return pc, ctx
}
