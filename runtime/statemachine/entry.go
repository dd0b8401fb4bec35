package statemachine

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime"
)

// Kind is the kind of a state machine entry.
type Kind uint8

const (
	KindOpenSession Kind = iota + 1
	KindKeepAlive
	KindCloseSession
	KindOpenResource
	KindDeleteResource
	KindCommand
	kindMax
)

func (k Kind) String() string {
	switch k {
	case KindOpenSession:
		return "OpenSession"
	case KindKeepAlive:
		return "KeepAlive"
	case KindCloseSession:
		return "CloseSession"
	case KindOpenResource:
		return "OpenResource"
	case KindDeleteResource:
		return "DeleteResource"
	case KindCommand:
		return "Command"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Entry is one state machine entry, the payload of a Raft entry. Which fields
// mean something depends on Kind.
type Entry struct {
	Kind Kind
	// OpenSession
	ClientID string
	Timeout  time.Duration
	// KeepAlive
	KeepAlives []KeepAlive
	// CloseSession, OpenResource, DeleteResource, Command: the session.
	Session uint64
	// CloseSession
	Expired bool
	// OpenResource
	Type string
	Name string
	// DeleteResource, Command
	Resource uint64
	// Command
	Sequence uint64
	Op       runtime.OpCode
	Args     []byte
	// CommandAck (Command) is the highest sequence whose response the client
	// had when it sent the command: the session's response cache is trimmed
	// to it, so it holds only what is in flight, not what waited for the
	// next keep-alive.
	CommandAck uint64
}

// KeepAlive keeps one session alive and acknowledges what its client received.
type KeepAlive struct {
	Session    uint64
	CommandAck uint64
	EventAck   uint64
}

const entryFormat = 1

// ErrMalformed is returned for entry data that does not decode.
var ErrMalformed = errors.New("statemachine: malformed entry")

// Encode returns the entry's wire form: a format byte, then a msgpack array
// of the kind and the kind's fields.
func (e *Entry) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(entryFormat)
	enc := msgpack.NewEncoder(&buf)
	var err error
	put := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	u := func(v uint64) { put(func() error { return enc.EncodeUint(v) }) }
	s := func(v string) { put(func() error { return enc.EncodeString(v) }) }
	switch e.Kind {
	case KindOpenSession:
		put(func() error { return enc.EncodeArrayLen(3) })
		u(uint64(e.Kind))
		s(e.ClientID)
		put(func() error { return enc.EncodeInt(int64(e.Timeout)) })
	case KindKeepAlive:
		put(func() error { return enc.EncodeArrayLen(2) })
		u(uint64(e.Kind))
		put(func() error { return enc.EncodeArrayLen(len(e.KeepAlives)) })
		for _, k := range e.KeepAlives {
			u(k.Session)
			u(k.CommandAck)
			u(k.EventAck)
		}
	case KindCloseSession:
		put(func() error { return enc.EncodeArrayLen(3) })
		u(uint64(e.Kind))
		u(e.Session)
		put(func() error { return enc.EncodeBool(e.Expired) })
	case KindOpenResource:
		put(func() error { return enc.EncodeArrayLen(4) })
		u(uint64(e.Kind))
		u(e.Session)
		s(e.Type)
		s(e.Name)
	case KindDeleteResource:
		put(func() error { return enc.EncodeArrayLen(3) })
		u(uint64(e.Kind))
		u(e.Session)
		u(e.Resource)
	case KindCommand:
		put(func() error { return enc.EncodeArrayLen(7) })
		u(uint64(e.Kind))
		u(e.Session)
		u(e.Sequence)
		u(e.Resource)
		u(uint64(e.Op))
		put(func() error { return enc.EncodeBytes(e.Args) })
		u(e.CommandAck)
	default:
		return nil, fmt.Errorf("statemachine: encode entry of kind %d", e.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("statemachine: encode %s: %w", e.Kind, err)
	}
	return buf.Bytes(), nil
}

// DecodeEntry decodes an entry's wire form. It never panics on bad input.
func DecodeEntry(data []byte) (Entry, error) {
	if len(data) == 0 || data[0] != entryFormat {
		return Entry{}, fmt.Errorf("%w: unknown format", ErrMalformed)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data[1:]))
	var e Entry
	var err error
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 1 {
		return Entry{}, fmt.Errorf("%w: header", ErrMalformed)
	}
	u := func() uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = dec.DecodeUint64()
		return v
	}
	s := func() string {
		if err != nil {
			return ""
		}
		var v string
		v, err = dec.DecodeString()
		return v
	}
	kind := Kind(u())
	want := map[Kind]int{KindOpenSession: 3, KindKeepAlive: 2, KindCloseSession: 3, KindOpenResource: 4, KindDeleteResource: 3, KindCommand: 7}[kind]
	if kind == KindCommand && n == 6 {
		want = 6 // written before commands carried CommandAck
	}
	if err != nil || want == 0 || n != want {
		return Entry{}, fmt.Errorf("%w: kind %d with %d fields", ErrMalformed, kind, n)
	}
	e.Kind = kind
	switch kind {
	case KindOpenSession:
		e.ClientID = s()
		if err == nil {
			var t int64
			t, err = dec.DecodeInt64()
			e.Timeout = time.Duration(t)
		}
	case KindKeepAlive:
		var m int
		if m, err = dec.DecodeArrayLen(); err == nil {
			if m < 0 || m > len(data) {
				return Entry{}, fmt.Errorf("%w: keep-alive count %d", ErrMalformed, m)
			}
			e.KeepAlives = make([]KeepAlive, 0, m)
			for range m {
				e.KeepAlives = append(e.KeepAlives, KeepAlive{Session: u(), CommandAck: u(), EventAck: u()})
			}
		}
	case KindCloseSession:
		e.Session = u()
		if err == nil {
			e.Expired, err = dec.DecodeBool()
		}
	case KindOpenResource:
		e.Session, e.Type, e.Name = u(), s(), s()
	case KindDeleteResource:
		e.Session, e.Resource = u(), u()
	case KindCommand:
		e.Session, e.Sequence, e.Resource = u(), u(), u()
		op := u()
		if op > 0xffff {
			return Entry{}, fmt.Errorf("%w: operation code %d", ErrMalformed, op)
		}
		e.Op = runtime.OpCode(op)
		if err == nil {
			e.Args, err = dec.DecodeBytes()
		}
		if n == 7 {
			e.CommandAck = u()
		}
	}
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %s: %v", ErrMalformed, kind, err)
	}
	return e, nil
}
