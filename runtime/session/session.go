package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// Response is the outcome of one command, kept until the client acknowledges it.
type Response struct {
	// Index is the log index at which the command was applied.
	Index uint64
	// Result is the encoded result, or nil with Err set.
	Result []byte
	Err    *WireError
	// EventIndex is the session's last event index after the command: the
	// client delivers every event up to it before completing the command.
	EventIndex uint64
}

// WireError is an error as it crosses the wire: a runtime error, a declared
// resource error, or an application error carried by its message.
type WireError struct {
	Kind    ErrorKind
	Code    uint16
	Message string
}

// ErrorKind classifies a WireError.
type ErrorKind uint8

const (
	// ErrorRuntime: Code is a runtime error (see RuntimeErrors).
	ErrorRuntime ErrorKind = iota + 1
	// ErrorDeclared: Code is a runtime.ErrorCode the resource type declares.
	ErrorDeclared
	// ErrorApplication: an undeclared error; only Message is meaningful.
	ErrorApplication
)

func (e *WireError) Error() string { return e.Message }

// EventBatch is what a session's client receives for one log index: the
// events published to the session while that entry was applied.
type EventBatch struct {
	Index uint64
	// PrevIndex is the index of the session's previous batch, so that the
	// client detects a gap and asks for a resend.
	PrevIndex uint64
	Events    []Event
}

// Event is one published event.
type Event struct {
	Resource uint64
	Code     runtime.EventCode
	Data     []byte
}

// Session is one client session's replicated state.
type Session struct {
	ID       uint64
	ClientID string
	Timeout  time.Duration
	State    runtime.SessionState
	// LastKeepAlive is the log time of the session's last keep-alive (or of
	// its opening).
	LastKeepAlive time.Time
	// KeepAliveIndex is the index of the entry that last kept the session
	// alive (log cleaning keeps that entry live).
	KeepAliveIndex uint64

	// CommandSeq is the highest sequence number applied.
	CommandSeq uint64
	// responses caches outcomes by sequence until acknowledged.
	responses map[uint64]Response
	// CommandAck is the highest sequence the client acknowledged.
	CommandAck uint64

	// EventIndex is the index of the newest event batch.
	EventIndex uint64
	// EventAck is the highest batch index the client acknowledged.
	EventAck uint64
	events   []EventBatch
}

// New returns an open session.
func New(id uint64, clientID string, timeout time.Duration, now time.Time) *Session {
	return &Session{
		ID: id, ClientID: clientID, Timeout: timeout, State: runtime.SessionOpen,
		LastKeepAlive: now, KeepAliveIndex: id,
		responses: map[uint64]Response{},
	}
}

// Sequence classifies a command with sequence seq.
type Sequence uint8

const (
	// Next: apply it now.
	Next Sequence = iota + 1
	// Duplicate: it was applied already; answer from Cached.
	Duplicate
	// Early: predecessors are missing. It is not applied: the client
	// resends it after them (runtime.ErrCommandOutOfOrder), so commands
	// always run at their own index in sequence order.
	Early
)

// Classify says what to do with a command of sequence seq.
func (s *Session) Classify(seq uint64) Sequence {
	switch {
	case seq <= s.CommandSeq:
		return Duplicate
	case seq == s.CommandSeq+1:
		return Next
	default:
		return Early
	}
}

// Cached returns the cached response to an applied command, if the client
// has not acknowledged it yet.
func (s *Session) Cached(seq uint64) (Response, bool) {
	r, ok := s.responses[seq]
	return r, ok
}

// Applied records the outcome of the command with the next sequence.
func (s *Session) Applied(seq uint64, r Response) {
	if seq != s.CommandSeq+1 {
		panic(fmt.Sprintf("session %d: applied sequence %d after %d", s.ID, seq, s.CommandSeq))
	}
	s.CommandSeq = seq
	r.EventIndex = s.EventIndex
	if seq > s.CommandAck {
		s.responses[seq] = r
	}
}

// Acknowledge trims the response cache and the event queue up to what the
// client reports having received.
func (s *Session) Acknowledge(commandAck, eventAck uint64) {
	if commandAck > s.CommandAck {
		for seq := range s.responses {
			if seq <= commandAck {
				delete(s.responses, seq)
			}
		}
		s.CommandAck = commandAck
	}
	if eventAck > s.EventAck {
		i := 0
		for i < len(s.events) && s.events[i].Index <= eventAck {
			i++
		}
		s.events = append(s.events[:0:0], s.events[i:]...)
		s.EventAck = eventAck
	}
}

// Publish queues an event at the given log index.
func (s *Session) Publish(index uint64, e Event) {
	if s.State != runtime.SessionOpen {
		return
	}
	if n := len(s.events); n > 0 && s.events[n-1].Index == index {
		s.events[n-1].Events = append(s.events[n-1].Events, e)
		return
	}
	s.events = append(s.events, EventBatch{Index: index, PrevIndex: s.EventIndex, Events: []Event{e}})
	s.EventIndex = index
}

// EventsAfter returns the queued batches with an index above after, for
// pushing to (or resending to) the client.
func (s *Session) EventsAfter(after uint64) []EventBatch {
	for i, b := range s.events {
		if b.Index > after {
			return s.events[i:]
		}
	}
	return nil
}

// Close ends the session: it drops everything it held.
func (s *Session) Close(expired bool) {
	if expired {
		s.State = runtime.SessionExpired
	} else {
		s.State = runtime.SessionClosed
	}
	s.responses = map[uint64]Response{}
	s.events = nil
}

// Sizes reports how much the session holds, for memory accounting and tests.
func (s *Session) Sizes() (responses, eventBatches int) {
	return len(s.responses), len(s.events)
}

// ErrorFor classifies an error for the wire: a runtime error, an error the
// resource type declares (typ may be nil), or an application error carried
// by its message. protocol.ErrorOf turns it back on the client.
func ErrorFor(err error, typ *runtime.ResourceType) *WireError {
	if code, ok := runtime.RuntimeErrorCode(err); ok {
		return &WireError{Kind: ErrorRuntime, Code: code, Message: err.Error()}
	}
	if typ != nil {
		for _, e := range typ.Errors {
			if errors.Is(err, e.Err) {
				return &WireError{Kind: ErrorDeclared, Code: uint16(e.Code), Message: err.Error()}
			}
		}
	}
	return &WireError{Kind: ErrorApplication, Message: err.Error()}
}
