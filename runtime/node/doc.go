// Package node runs one member's Raft core: the goroutine that ticks it,
// feeds it messages and requests, persists what it hands out with one save
// per batch, sends its messages (a leader's appends in parallel with its own
// write, §10.2.1), and hands committed entries to the application in order.
//
// It sits between the pure core (runtime/raft), the durable log
// (runtime/log) and the transport (runtime/transport), which it uses through
// the small interfaces Storage and Transport; runtime/server builds a member
// on top of it by adding the replicated state machine and the client
// protocol.
//
// All calls into the core happen on the node's goroutine. Callers talk to it
// through methods that send a request and wait for the answer or for their
// context to end.
package node
