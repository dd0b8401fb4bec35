package runtime

import (
	"io"
	"time"
)

// Commit is one command or query as a resource method sees it.
type Commit interface {
	// Index is the command's log index; for a query, the index the state
	// machine had applied when the query ran.
	Index() uint64
	// Time is the state machine's deterministic time: the running maximum of
	// the leader's timestamps on the entries applied so far.
	Time() time.Time
	// Session is the client session that issued the operation.
	Session() Session
	// Release tells the runtime that this command no longer holds state
	// (Release mode); the log may then drop it. Releasing twice is harmless.
	// Queries cannot be released.
	Release()
}

// Session is a client session as resources see it. Sessions are comparable by ID
// and stay valid as values after the session closes (Publish then does nothing).
type Session interface {
	// ID is the session's ID: the index of the entry that opened it.
	ID() uint64
	// State says whether the session is open.
	State() SessionState
	// Publish queues an event for the session's client. Events must be of a
	// type the resource declares (//copycat:event); the client receives them
	// exactly once, in order, before the response of any later command.
	Publish(event any)
}

// SessionState is the lifecycle state of a session.
type SessionState uint8

const (
	// SessionOpen sessions receive events and hold resources' state.
	SessionOpen SessionState = iota + 1
	// SessionClosed sessions were closed by their client.
	SessionClosed
	// SessionExpired sessions stopped sending keep-alives and were expired
	// by the leader.
	SessionExpired
)

func (s SessionState) String() string {
	switch s {
	case SessionOpen:
		return "open"
	case SessionClosed:
		return "closed"
	case SessionExpired:
		return "expired"
	}
	return "unknown"
}

// Context is a resource instance's handle on the runtime, given once through
// Initializer.Init (and again after a restore).
type Context interface {
	// ResourceID is the ID of the resource instance: the index of the entry
	// that created it.
	ResourceID() uint64
	// Name is the name the instance was opened with.
	Name() string
	// Now is the state machine's deterministic time.
	Now() time.Time
	// Schedule runs f once the state machine's time passes now+delay, before
	// the entry whose timestamp passes it is applied. Timers exist only in
	// memory: a Release-mode resource recreates them by replaying its live
	// commits, a Snapshot-mode one from its state in Init after Restore.
	Schedule(delay time.Duration, f func()) Timer
	// Session returns the open session with the given ID, or nil.
	Session(id uint64) Session
	// Sessions returns the open sessions in ID order.
	Sessions() []Session
}

// Timer is a scheduled callback.
type Timer interface {
	// Cancel stops the timer if it has not fired; it reports whether it did.
	Cancel() bool
}

// Resource is the state machine side of one resource instance, as generated
// code exposes a user's annotated struct to the server.
type Resource interface {
	// Execute runs the operation with the given code on its encoded
	// arguments and returns the encoded result. An error it returns goes back
	// to the client; it does not stop the member.
	Execute(c Commit, op OpCode, args []byte) ([]byte, error)
}

// Optional interfaces a Resource (or the struct behind it) may implement.
type (
	// Initializer receives the resource's Context when the instance is
	// created or restored.
	Initializer interface{ Init(ctx Context) }
	// SessionListener hears about sessions opening and ending, on every
	// member, in log order. Locks and elections free what a dead session held.
	SessionListener interface {
		SessionOpened(s Session)
		SessionClosed(s Session, expired bool)
	}
	// Snapshotter writes and reads a Snapshot-mode resource's whole state.
	Snapshotter interface {
		Snapshot(w io.Writer) error
		Restore(r io.Reader) error
	}
	// Deleter is told that the resource instance is being deleted, to free
	// what it holds (sessions waiting on it are told by the runtime).
	Deleter interface{ Delete() }
)

// OpCode identifies an operation of a resource type. Codes are stable across
// regenerations: adding an operation never renumbers existing ones.
type OpCode uint16

// OpKind says whether an operation changes state.
type OpKind uint8

const (
	// Command operations go through the log and run exactly once.
	Command OpKind = iota + 1
	// Query operations read state without entering the log.
	Query
)

// CompactionMode says how the log sheds a resource's old commits.
type CompactionMode uint8

const (
	// Snapshot mode: the runtime snapshots the resource at the compaction
	// point and releases every earlier commit of it. The default.
	Snapshot CompactionMode = iota
	// Release mode: the resource releases commits that no longer hold
	// state; its live commits are its snapshot.
	Release
)

// Operation describes one operation of a resource type.
type Operation struct {
	Code OpCode
	Name string
	Kind OpKind
	// Consistency is a query's default consistency level.
	Consistency Consistency
}

// EventType describes one event type a resource publishes.
type EventType struct {
	Code EventCode
	Name string
}

// EventCode identifies an event type of a resource type.
type EventCode uint16

// ErrorType describes one error a resource declares (//copycat:error): it
// keeps its identity across the wire, so errors.Is works on the client.
type ErrorType struct {
	Code ErrorCode
	Err  error
}

// ErrorCode identifies a declared error of a resource type.
type ErrorCode uint16

// ResourceType is what a server registers to host a kind of resource. The
// generator writes one per annotated struct, named <Struct>Type.
type ResourceType struct {
	// Name identifies the type on the wire and in the log, e.g.
	// "copycat.lock" or "example.com/app/counter.Counter". It must not change
	// while a cluster has instances of it.
	Name       string
	Compaction CompactionMode
	Operations []Operation
	Events     []EventType
	Errors     []ErrorType
	// New returns a fresh instance.
	New func() Resource
	// EncodeEvent encodes an event value published by an instance.
	EncodeEvent func(event any) (EventCode, []byte, error)
}

// Operation returns the operation with the given code.
func (t *ResourceType) Operation(code OpCode) (Operation, bool) {
	for _, op := range t.Operations {
		if op.Code == code {
			return op, true
		}
	}
	return Operation{}, false
}

// Error returns the declared error with the given code.
func (t *ResourceType) Error(code ErrorCode) (error, bool) {
	for _, e := range t.Errors {
		if e.Code == code {
			return e.Err, true
		}
	}
	return nil, false
}
