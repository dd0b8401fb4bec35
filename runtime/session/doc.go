// Package session keeps the server-side state of client sessions, identical
// on every member: command sequencing (each command applies exactly once, in
// the session's order), the response cache that answers retries, and the
// event queue that delivers session events exactly once, in order.
//
// It has no goroutines, no clock and no I/O: the state machine drives it
// entry by entry, so a simulator can too.
package session
