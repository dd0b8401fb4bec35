// Package node runs one member's Raft core: the goroutine that ticks it,
// feeds it messages and requests, persists what it hands out, sends its
// messages (a leader's appends in parallel with its own write, §10.2.1), and
// hands committed entries to the application in order.
//
// Persistence is a pipeline (writer.go): a writer goroutine saves each
// Ready — merging whatever queued up during the previous Save into one — while
// the loop keeps stepping, ticking and preparing the next, so a leader takes
// proposals and acknowledgements, and a follower the next append, during the
// fsyncs. What a write vouches for (a follower's acknowledgement, a vote)
// is sent only once that write is durable, a leader counts its own copy
// only from then, and entries are applied only once durable here. The core
// reads the log through an in-memory view of the newest durable entries
// (view.go), because the storage is locked while it writes; reads below the
// view are bounded per loop iteration, as is the apply work
// (Config.MaxApplyBytes), so that a member catching up — or helping another
// catch up — keeps ticking and sending heartbeats.
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
