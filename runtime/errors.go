package runtime

import (
	"errors"
	"fmt"
)

// Errors that reach clients from the runtime itself. They keep their identity
// across the wire (errors.Is works on the client).
var (
	// ErrUnknownResourceType: the server does not host the requested type.
	ErrUnknownResourceType = errors.New("copycat: unknown resource type")
	// ErrUnknownResource: no resource instance with that ID (never created,
	// or deleted).
	ErrUnknownResource = errors.New("copycat: unknown resource")
	// ErrUnknownOperation: the resource type has no operation with that code
	// (a client generated from a newer version of the resource).
	ErrUnknownOperation = errors.New("copycat: unknown operation")
	// ErrSessionExpired: the session expired; its state is gone and it cannot
	// be used again. Open a new session.
	ErrSessionExpired = errors.New("copycat: session expired")
	// ErrSessionClosed: the session was closed.
	ErrSessionClosed = errors.New("copycat: session closed")
	// ErrBadRequest: the request could not be decoded.
	ErrBadRequest = errors.New("copycat: malformed request")
	// ErrNoLeader: no leader is known now; retry later.
	ErrNoLeader = errors.New("copycat: no leader")
	// ErrCommandOutOfOrder: a command reached the log ahead of an earlier
	// command of its session and was not applied. The client resends it once
	// the earlier ones are answered, so every command runs in sequence order
	// at its own log index (fencing tokens and log cleaning depend on that).
	ErrCommandOutOfOrder = errors.New("copycat: command arrived ahead of an earlier one of its session")
)

// ApplicationError is an error a resource returned that it did not declare:
// only its message crosses the wire.
type ApplicationError struct {
	Message string
}

func (e *ApplicationError) Error() string { return e.Message }

// ResourceError wraps an error with the resource and operation it came from.
type ResourceError struct {
	Type      string
	Operation string
	Err       error
}

func (e *ResourceError) Error() string {
	return fmt.Sprintf("%s.%s: %v", e.Type, e.Operation, e.Err)
}

func (e *ResourceError) Unwrap() error { return e.Err }

// runtimeErrors numbers the runtime's errors for the wire. Append only.
var runtimeErrors = []error{
	1: ErrUnknownResourceType,
	2: ErrUnknownResource,
	3: ErrUnknownOperation,
	4: ErrSessionExpired,
	5: ErrSessionClosed,
	6: ErrBadRequest,
	7: ErrNoLeader,
	8: ErrCommandOutOfOrder,
}

// RuntimeErrorCode returns the wire code of a runtime error err wraps.
func RuntimeErrorCode(err error) (uint16, bool) {
	for code, e := range runtimeErrors {
		if e != nil && errors.Is(err, e) {
			return uint16(code), true
		}
	}
	return 0, false
}

// RuntimeError returns the runtime error with the given wire code.
func RuntimeError(code uint16) (error, bool) {
	if int(code) < len(runtimeErrors) && runtimeErrors[code] != nil {
		return runtimeErrors[code], true
	}
	return nil, false
}
