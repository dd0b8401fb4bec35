// Package election is Copycat's leader election: candidates campaign under
// a name, one of them leads at a time, and the others wait their turn in the
// order the cluster logged their campaigns.
//
// # Using it
//
// Register ElectionType with the servers (server.New(config,
// election.ElectionType)) or the test cluster, then:
//
//	e, err := election.NewElector(ctx, cli, "payments")
//	term, err := e.Campaign(ctx, "node-1")          // waits until elected
//	stop := e.OnLost(func() { aborted.Store(true) }) // the session could no longer be known alive
//	defer stop()
//	err = e.Proclaim(ctx, []byte("10.0.0.1:8080"))  // the leader's value
//	for _, job := range work {
//		if !e.IsLeader() {
//			break // another candidate may lead soon: stop acting as leader
//		}
//		store.Write(job, uint64(term)) // the store refuses terms lower than it has seen
//	}
//	err = e.Resign(ctx)                              // the next candidate is elected at once
//
//	info, err := e.Leader(ctx)                       // candidate, term, session, value
//	unwatch, err := e.Observe(ctx, func(c election.Changed) { ... }) // every change of leader or value
//
// TestPackageDoc runs this code against an in-memory cluster.
//
// # Semantics
//
//   - Campaigns are elected one at a time in the order the cluster logged
//     them. An election of a waiting campaign is pushed to its client as an
//     event (no polling): Campaign returns when it arrives.
//   - The Term of a leadership is the log index of the Campaign request that
//     was elected, as a lock's fencing token is its Acquire's index: unique
//     (no two requests share an index), known when the request is logged,
//     and increasing from leader to leader, because campaigns are elected in
//     log order and a campaign that finds nobody leading or waiting is newer
//     than every earlier one. It survives log cleaning (the Campaign entry is
//     the state), and it is not Raft's term: many leaderships can fall in one
//     Raft term and one leadership can outlive many. Use it as a fencing
//     token.
//   - A leader keeps its term until it resigns or its session closes or
//     expires; then the next waiting candidate whose session is open is
//     elected at once, in the same log entry. A waiting candidate whose
//     session ends, or whose Campaign's ctx ends, leaves the queue.
//   - Proclaim sets the leader's value, guarded by term: the cluster refuses
//     (ErrNotLeader) a term that is not the current leader's, or that
//     belongs to another session. A new leader starts with no value.
//   - Listening sessions (Observe, or ElectionClient.Watch / Listen) get a
//     Changed event for every change, in log order: each new leader, no
//     leader (Term 0), and each value proclaimed (Proclaimed set). Only the
//     changes after Listen: query Leader for the state at that point.
//   - Only a majority can elect: a client that reaches only a minority of
//     members waits (or its ctx ends); it is never elected there.
//
// # Knowing you still lead
//
// As for locks (see package lock): the cluster cannot expire a session,
// and so cannot elect anyone else, before client.Client.Confirmed() +
// SessionTimeout() on its own clock. Elector.IsLeader turns false, and
// OnLost callbacks run, at Confirmed() + SessionTimeout() − margin
// (DefaultMargin: a tenth of the timeout, at least 50ms; WithMargin changes
// it), before another candidate can be elected. What a leader does between
// checking IsLeader and acting is not covered: that is what the term is
// for. After a loss, call Resign (or Campaign again, which resigns the lost
// term first): if the session survived, the cluster still counts the old
// term as leading until then.
//
// # Compared with etcd and Atomix
//
// Elector follows etcd's concurrency.Election (Campaign, Proclaim, Resign,
// Leader, Observe) and Atomix's LeaderElection (terms from log indexes,
// FIFO candidates, leaders replaced when their session ends). etcd's
// revision-based leader key plays the part of Term; its Observe reports
// value changes too, as Changed does here. Unlike etcd, a leader learns
// that it may have lost before anyone else can be elected (IsLeader,
// OnLost).
//
// # The state machine
//
// Election is an annotated resource in release mode: its state is the
// Campaign commits of the leader and the waiting candidates, the leader's
// last Proclaim and the Listen commits of listening sessions. A Resign, a
// refused Proclaim, a superseded Proclaim, an Unlisten, and the Campaign of
// a leader that stepped down or a candidate that left are released, so the
// log keeps only what rebuilds the current state: replaying the live
// entries in index order elects the same leader (the oldest live Campaign)
// with the same term and value.
package election
