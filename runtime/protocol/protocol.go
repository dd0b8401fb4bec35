// Package protocol defines the messages clients and members exchange on a
// member's client port: one msgpack message per frame (runtime/transport's
// framing, after a handshake of kind transport.KindClient).
//
// Requests carry an ID chosen by the client; the member's response carries
// the same ID, so many requests are in flight on one connection. Members push
// session events unsolicited (ID 0).
package protocol

import (
	"errors"
	"fmt"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// Type is the kind of a message.
type Type uint8

const (
	OpenSession Type = iota + 1
	Attach
	KeepAlive
	CloseSession
	OpenResource
	DeleteResource
	Command
	Query
	Events       // member -> client push
	ResendEvents // client -> member: push again after EventIndex
	Response
	// Admin requests (see admin.go): cluster status, answered by any member,
	// and membership changes and leadership transfer, run on the leader.
	AdminStatus
	AdminAdd
	AdminRemove
	AdminPromote
	AdminDemote
	AdminTransfer
	typeMax
)

func (t Type) String() string {
	names := [...]string{"", "OpenSession", "Attach", "KeepAlive", "CloseSession", "OpenResource",
		"DeleteResource", "Command", "Query", "Events", "ResendEvents", "Response",
		"AdminStatus", "AdminAdd", "AdminRemove", "AdminPromote", "AdminDemote", "AdminTransfer"}
	if t > 0 && t < typeMax {
		return names[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Status is the outcome class of a Response.
type Status uint8

const (
	// OK: the request succeeded; an application-level error may still be in Err.
	OK Status = iota
	// Failed: Err says why.
	Failed
	// NotLeader: this member cannot serve the request; Leader names the
	// leader's address if known. The client retries there.
	NotLeader
)

// Message is every message of the protocol; fields are used per Type.
type Message struct {
	Type Type
	ID   uint64

	Session  uint64
	Sequence uint64 // Command: its sequence; Query: the last command it follows
	Index    uint64 // Query: highest index the client has seen; responses: the index served
	Resource uint64
	Op       runtime.OpCode
	Args     []byte

	Consistency runtime.Consistency
	ClientID    string
	ResType     string
	Name        string
	TimeoutNs   int64

	CommandAck uint64
	EventAck   uint64 // KeepAlive: acknowledged; Attach/ResendEvents: push after this

	Status     Status
	Leader     string
	Members    []string
	Err        *session.WireError
	Result     []byte
	EventIndex uint64

	PrevIndex uint64 // Events
	Events    []session.Event
}

// ErrMalformed is returned for frames that do not decode to a valid message.
var ErrMalformed = errors.New("protocol: malformed message")

// Encode returns the message's frame body.
func Encode(m *Message) ([]byte, error) {
	return AppendEncode(nil, m)
}

// Decode parses a frame body. It never panics on bad input.
func Decode(b []byte) (m *Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("%w: %v", ErrMalformed, p)
		}
	}()
	m = &Message{}
	if err := decodeMessage(b, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Type == 0 || m.Type >= typeMax {
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, m.Type)
	}
	return m, nil
}

// ErrorOf converts a wire error back into the error a caller matches with
// errors.Is: a runtime sentinel, the resource type's declared error, or an
// *runtime.ApplicationError.
func ErrorOf(w *session.WireError, typ *runtime.ResourceType) error {
	if w == nil {
		return nil
	}
	switch w.Kind {
	case session.ErrorRuntime:
		if e, ok := runtime.RuntimeError(w.Code); ok {
			if w.Message != "" && w.Message != e.Error() {
				return fmt.Errorf("%w (%s)", e, w.Message)
			}
			return e
		}
	case session.ErrorDeclared:
		if typ != nil {
			if e, ok := typ.Error(runtime.ErrorCode(w.Code)); ok {
				return e
			}
		}
	}
	return &runtime.ApplicationError{Message: w.Message}
}
