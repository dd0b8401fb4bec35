// Package lock is Copycat's distributed lock: a fair (FIFO) mutual exclusion
// lock with fencing tokens, shared by every client that opens the same name.
//
// # Using it
//
// Register LockType with the servers (server.New(config, lock.LockType)) or
// the test cluster, then:
//
//	m, err := lock.NewMutex(ctx, cli, "orders")
//	tok, err := m.Lock(ctx)              // waits its turn
//	stop := m.OnLost(func() { aborted.Store(true) }) // the session could no longer be known alive
//	defer stop()
//	for _, step := range work {
//		if !m.Held() {
//			break // another client may hold the lock soon: stop writing
//		}
//		store.Write(step, uint64(tok)) // the store refuses tokens lower than it has seen
//	}
//	err = m.Unlock(ctx)
//
//	tok, ok, err := m.TryLock(ctx, 2*time.Second) // ok false: not granted in 2s of log time
//	info, err := m.Holder(ctx)                    // token and session of the holder, queue length
//
// TestPackageDoc runs this code against an in-memory cluster.
//
// # Semantics
//
//   - Requests are granted one at a time in the order the cluster logged
//     them. A grant to a queued request is pushed to its client as an event
//     (no polling): Lock returns when it arrives.
//   - The fencing Token of a grant is the log index of the request that was
//     granted. Grants happen in request order, so tokens strictly increase
//     from holder to holder, across leader changes and restarts.
//   - TryLock's wait is measured in log time by a timer of the replicated
//     state machine, so every member agrees on whether a request timed out;
//     wait 0 takes the lock only if it is free with nobody queued.
//   - A holder whose session closes or expires loses the lock and the next
//     waiter whose session is open is granted it; a waiter whose session
//     ends leaves the queue. A Lock whose ctx ends withdraws its request
//     (and releases the lock if the grant crossed the cancellation).
//   - Release refuses a token that is not the calling session's current
//     grant or queued request (ErrNotHolder): a stale holder can never free
//     someone else's lock.
//   - The lock is not reentrant: a second Lock on a held Mutex queues behind
//     the first, as sync.Mutex would block.
//   - Only a majority can grant: a client that reaches only a minority of
//     members waits (or its ctx ends); it is never granted the lock there.
//
// # Knowing you still hold it
//
// A client cannot learn in time that the cluster expired its session: the
// cluster is exactly what it cannot reach. But it knows a bound. The cluster
// counts a session's timeout from when the leader last heard a keep-alive,
// which was after the client sent it; client.Client.Confirmed is the send
// time of the last keep-alive the cluster acknowledged. So the session
// cannot expire, and the lock cannot pass to anyone else, before
// Confirmed() + SessionTimeout() on the leader's clock. Mutex.Held turns
// false, and OnLost callbacks run, at Confirmed() + SessionTimeout() −
// margin: before the next holder can be granted the lock, as long as the
// clocks' rates differ by less than the margin over one timeout and the
// holder checks Held before each protected step. Held computes the bound
// when called, so a slow watchdog cannot make it late; OnLost is as punctual
// as the Go scheduler. The default margin (DefaultMargin) is a tenth of the
// session timeout and at least 50ms; WithMargin changes it. What a holder
// does between checking Held and acting is not covered: that is what the
// fencing token is for.
//
// # Compared with Atomix and etcd
//
// Semantics follow Atomix's DistributedLock and etcd's concurrency.Mutex;
// where they differ, this package takes the safer side:
//
//   - Token: Atomix uses the lock command's index, etcd the lock key's
//     create revision — both the request's position in the log, as here,
//     not the position of the entry that happened to grant it. That index is
//     known when the request is logged and survives log cleaning (the
//     Acquire entry is the state; the Release entry that granted it is
//     dropped), so replaying the live entries rebuilds the same token.
//   - Loss: etcd's Mutex gives no signal before the client learns its lease
//     is gone, which is after another client may already hold the lock; a
//     client learning that its session expired is just as late. Held and
//     OnLost report the loss before anyone else can be granted the lock.
//   - Timeouts: etcd bounds a wait by the caller's ctx, Atomix by a timer in
//     the state machine; TryLock uses the state machine's timer, and ctx for
//     the caller's own deadline.
//   - Cancellation: a cancelled Lock withdraws its queued request, and a
//     grant that crossed the cancellation is released, not left held.
//
// # The state machine
//
// Lock is an annotated resource in release mode: its state is the Acquire
// commits of the holder and the waiters, in log order. Release commands, a
// try-only Acquire that failed, and the Acquire of a holder that unlocked or
// a waiter that left are released at once, so the log keeps only what
// rebuilds the current state (replaying it recreates the wait timers too).
// Its operations, events and errors are usable from resources that embed
// it.
package lock
