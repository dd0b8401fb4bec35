// Package statemachine is Copycat's replicated state machine: it decodes
// the entries committed to the log and applies them, deterministically and in
// order, to the sessions (runtime/session) and the resource instances hosted
// on one log.
//
// Entries: OpenSession, KeepAlive (many sessions in one entry), CloseSession
// (closed or expired), OpenResource (create-or-get by type and name; the
// instance's ID is the entry's index), DeleteResource and Command. Raft's own
// NoOp and configuration entries advance time and nothing else.
//
// Time is the running maximum of the leader's timestamps on entries, so
// every member computes the same time; timers fire as that time passes them,
// before the entry that passes them is applied. Every command is tracked as
// live until its resource releases it (or, for Snapshot-mode resources, a
// later snapshot covers it); log cleaning builds on that.
//
// A StateMachine has no goroutines, no clock and no I/O. It is not safe for
// concurrent use.
package statemachine
