package protocol

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// Wire format: a msgpack array of the Message fields in declaration order,
// written by hand (no reflection: this is every request and response).
// Err is nil or [kind, code, message]; Events is nil or an array of
// [resource, code, data]. Field counts are exact; the handshake's protocol
// version is how the format changes.
const messageFields = 26

// AppendEncode appends the message's encoding to dst.
func AppendEncode(dst []byte, m *Message) ([]byte, error) {
	b := appendArray(dst, messageFields)
	b = appendUint(b, uint64(m.Type))
	b = appendUint(b, m.ID)
	b = appendUint(b, m.Session)
	b = appendUint(b, m.Sequence)
	b = appendUint(b, m.Index)
	b = appendUint(b, m.Resource)
	b = appendUint(b, uint64(m.Op))
	b = appendBytes(b, m.Args)
	b = appendUint(b, uint64(m.Consistency))
	b = appendString(b, m.ClientID)
	b = appendString(b, m.ResType)
	b = appendString(b, m.Name)
	b = appendInt(b, m.TimeoutNs)
	b = appendUint(b, m.CommandAck)
	b = appendUint(b, m.EventAck)
	b = appendUint(b, uint64(m.Status))
	b = appendString(b, m.Leader)
	if m.Members == nil {
		b = append(b, 0xc0)
	} else {
		b = appendArray(b, len(m.Members))
		for _, a := range m.Members {
			b = appendString(b, a)
		}
	}
	if m.Err == nil {
		b = append(b, 0xc0)
	} else {
		b = appendArray(b, 3)
		b = appendUint(b, uint64(m.Err.Kind))
		b = appendUint(b, uint64(m.Err.Code))
		b = appendString(b, m.Err.Message)
	}
	b = appendBytes(b, m.Result)
	b = appendUint(b, m.EventIndex)
	b = appendUint(b, m.PrevIndex)
	if m.Events == nil {
		b = append(b, 0xc0)
	} else {
		b = appendArray(b, len(m.Events))
		for _, e := range m.Events {
			b = appendArray(b, 3)
			b = appendUint(b, e.Resource)
			b = appendUint(b, uint64(e.Code))
			b = appendBytes(b, e.Data)
		}
	}
	// Reserved for a group ID (many Raft groups per member) and future use.
	b = appendUint(b, 0)
	b = appendUint(b, 0)
	b = appendUint(b, 0)
	return b, nil
}

func appendArray(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(b, uint64(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, 0xc0)
	}
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

var errShort = errors.New("truncated")

// reader decodes the subset of msgpack AppendEncode writes, bounds-checked.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail(errShort)
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) byte1() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) be(n int) uint64 {
	p := r.take(n)
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

// isNil consumes a nil if one is next.
func (r *reader) isNil() bool {
	if r.err == nil && len(r.b) > 0 && r.b[0] == 0xc0 {
		r.b = r.b[1:]
		return true
	}
	return false
}

func (r *reader) array() int {
	c := r.byte1()
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f)
	case c == 0xdc:
		return int(r.be(2))
	case c == 0xdd:
		return int(r.be(4))
	}
	r.fail(errors.New("expected an array"))
	return 0
}

func (r *reader) uint() uint64 {
	c := r.byte1()
	switch {
	case c < 0x80:
		return uint64(c)
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	}
	r.fail(errors.New("expected an unsigned integer"))
	return 0
}

func (r *reader) int() int64 {
	if r.err == nil && len(r.b) > 0 && r.b[0] == 0xd3 {
		r.b = r.b[1:]
		return int64(r.be(8))
	}
	v := r.uint()
	if v > math.MaxInt64 {
		r.fail(errors.New("integer overflows int64"))
	}
	return int64(v)
}

func (r *reader) small(max uint64) uint64 {
	v := r.uint()
	if v > max {
		r.fail(errors.New("value out of range"))
	}
	return v
}

func (r *reader) str() string {
	c := r.byte1()
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9:
		n = int(r.be(1))
	case c == 0xda:
		n = int(r.be(2))
	case c == 0xdb:
		n = int(r.be(4))
	default:
		r.fail(errors.New("expected a string"))
	}
	return string(r.take(n))
}

func (r *reader) bin() []byte {
	if r.isNil() {
		return nil
	}
	c := r.byte1()
	var n int
	switch c {
	case 0xc4:
		n = int(r.be(1))
	case 0xc5:
		n = int(r.be(2))
	case 0xc6:
		n = int(r.be(4))
	default:
		r.fail(errors.New("expected bytes"))
		return nil
	}
	p := r.take(n)
	if p == nil {
		return nil
	}
	return append(make([]byte, 0, n), p...)
}

func decodeMessage(b []byte, m *Message) error {
	r := &reader{b: b}
	if n := r.array(); r.err == nil && n != messageFields {
		return errors.New("wrong field count")
	}
	m.Type = Type(r.small(255))
	m.ID = r.uint()
	m.Session = r.uint()
	m.Sequence = r.uint()
	m.Index = r.uint()
	m.Resource = r.uint()
	m.Op = runtime.OpCode(r.small(math.MaxUint16))
	m.Args = r.bin()
	m.Consistency = runtime.Consistency(r.small(255))
	m.ClientID = r.str()
	m.ResType = r.str()
	m.Name = r.str()
	m.TimeoutNs = r.int()
	m.CommandAck = r.uint()
	m.EventAck = r.uint()
	m.Status = Status(r.small(255))
	m.Leader = r.str()
	if !r.isNil() {
		n := r.array()
		if n > len(r.b) {
			r.fail(errShort)
		}
		for i := 0; i < n && r.err == nil; i++ {
			m.Members = append(m.Members, r.str())
		}
		if m.Members == nil && r.err == nil {
			m.Members = []string{}
		}
	}
	if !r.isNil() {
		if n := r.array(); r.err == nil && n != 3 {
			r.fail(errors.New("error: wrong field count"))
		}
		m.Err = &session.WireError{Kind: session.ErrorKind(r.small(255)), Code: uint16(r.small(math.MaxUint16)), Message: r.str()}
	}
	m.Result = r.bin()
	m.EventIndex = r.uint()
	m.PrevIndex = r.uint()
	if !r.isNil() {
		n := r.array()
		if n > len(r.b) {
			r.fail(errShort)
		}
		m.Events = make([]session.Event, 0, min(n, 1024))
		for i := 0; i < n && r.err == nil; i++ {
			if k := r.array(); r.err == nil && k != 3 {
				r.fail(errors.New("event: wrong field count"))
			}
			m.Events = append(m.Events, session.Event{Resource: r.uint(), Code: runtime.EventCode(r.small(math.MaxUint16)), Data: r.bin()})
		}
	}
	r.uint()
	r.uint()
	r.uint()
	if r.err == nil && len(r.b) != 0 {
		r.fail(errors.New("trailing bytes"))
	}
	return r.err
}
