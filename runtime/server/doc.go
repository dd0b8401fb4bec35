// Package server runs a Copycat member: the Raft driver (runtime/node) with
// the durable log and the peer transport, the replicated state machine
// hosting the registered resource types, and the client protocol on the same
// port as the peers.
//
// The leader serves commands, linearizable queries (ReadIndex) and lease
// queries; any member, PASSIVE ones included, serves sequential queries once
// it has applied what the client has seen. The leader batches keep-alives of
// many sessions into one entry and expires sessions that stopped sending
// them: only a leader that has led for a whole session timeout may expire a
// session, because a new leader first gives every session a fresh timeout.
//
//	srv, err := server.New(server.Config{ID: 1, ClusterID: "prod", Addr: "10.0.0.1:7000", DataDir: "/var/lib/copycat"},
//		lock.LockType, counter.CounterType)
//	err = srv.Bootstrap(members) // first start of a new cluster; Start() on later starts
//	...
//	err = srv.Shutdown(ctx)      // hands leadership over first
package server
