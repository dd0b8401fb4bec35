package transport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Wire format of a batch (the body of a peer frame), all msgpack, written by
// hand without reflection:
//
//	batch    = array32 of message
//	message  = [Group, Type, From, To, Term, LogTerm, Index, Entries, Commit,
//	            Reject, RejectHint, Context, Snapshot]
//	Entries  = nil | array of entry
//	entry    = [Term, Index, Type, Timestamp, Data]
//	Snapshot = nil | [meta, Data]
//	meta     = [Index, Term, config]
//	config   = [Index, Term, Members]
//	Members  = nil | array of [ID, Type, Addr]
//
// Integers are msgpack ints in their smallest form, Data is bin (nil stays
// nil), Addr is str. Field counts are exact: the protocol version in the
// handshake, not tolerance of unknown fields, is how the format evolves.
const (
	messageFields  = 13
	entryFields    = 5
	snapshotFields = 2
	metaFields     = 3
	configFields   = 3
	memberFields   = 3

	// Smallest possible encodings, used to bound counts read from the wire
	// by the bytes that remain before anything is allocated.
	minMessageSize = 1 + messageFields
	minEntrySize   = 1 + entryFields
	minMemberSize  = 1 + memberFields

	// batchHeaderSize is an array32 header: the count is patched in when the
	// batch is finished, so messages can be appended one at a time.
	batchHeaderSize = 5

	// maxPrealloc caps slices allocated from a wire count; longer ones grow
	// by append as their elements actually decode.
	maxPrealloc = 1024
)

// appendBuf is an io.Writer and io.ByteWriter appending to a slice, so the
// msgpack encoder writes straight into the frame buffer and never fails.
type appendBuf struct{ b []byte }

func (w *appendBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendBuf) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

// encoder builds a batch incrementally. Encoders are pooled: the hot path
// allocates nothing once its buffers have grown.
type encoder struct {
	buf   appendBuf
	enc   *msgpack.Encoder
	count int
	err   error
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

func getEncoder() *encoder { return encoders.Get().(*encoder) }

func putEncoder(e *encoder) {
	e.buf.b = nil
	e.count, e.err = 0, nil
	encoders.Put(e)
}

// begin starts a batch in dst's storage.
func (e *encoder) begin(dst []byte) {
	e.buf.b = append(dst[:0], msgpcode.Array32, 0, 0, 0, 0)
	e.count, e.err = 0, nil
}

// size is the length of the batch body so far.
func (e *encoder) size() int { return len(e.buf.b) }

// add appends one message.
func (e *encoder) add(m *raft.Message) {
	e.count++
	e.arrayLen(messageFields)
	e.uint(m.Group)
	e.uint(uint64(m.Type))
	e.uint(m.From)
	e.uint(m.To)
	e.uint(m.Term)
	e.uint(m.LogTerm)
	e.uint(m.Index)
	if m.Entries == nil {
		e.nil()
	} else {
		e.arrayLen(len(m.Entries))
		for i := range m.Entries {
			en := &m.Entries[i]
			e.arrayLen(entryFields)
			e.uint(en.Term)
			e.uint(en.Index)
			e.uint(uint64(en.Type))
			e.int(en.Timestamp)
			e.bytes(en.Data)
		}
	}
	e.uint(m.Commit)
	e.bool(m.Reject)
	e.uint(m.RejectHint)
	e.uint(m.Context)
	if s := m.Snapshot; s == nil {
		e.nil()
	} else {
		e.arrayLen(snapshotFields)
		e.arrayLen(metaFields)
		e.uint(s.Meta.Index)
		e.uint(s.Meta.Term)
		e.arrayLen(configFields)
		e.uint(s.Meta.Config.Index)
		e.uint(s.Meta.Config.Term)
		if s.Meta.Config.Members == nil {
			e.nil()
		} else {
			e.arrayLen(len(s.Meta.Config.Members))
			for _, mem := range s.Meta.Config.Members {
				e.arrayLen(memberFields)
				e.uint(mem.ID)
				e.uint(uint64(mem.Type))
				e.string(mem.Addr)
			}
		}
		e.bytes(s.Data)
	}
}

// truncate undoes the messages added after the batch had size n and count c.
func (e *encoder) truncate(n, c int) { e.buf.b, e.count = e.buf.b[:n], c }

// finish patches the count into the header and returns the body.
func (e *encoder) finish() ([]byte, error) {
	if e.err != nil {
		return nil, fmt.Errorf("transport: encode batch: %w", e.err)
	}
	binary.BigEndian.PutUint32(e.buf.b[1:batchHeaderSize], uint32(e.count))
	return e.buf.b, nil
}

// The encoding helpers keep the first error; with appendBuf there is none,
// but the encoder's API reports errors and we do not hide them.
func (e *encoder) arrayLen(n int) {
	if e.err == nil {
		e.err = e.enc.EncodeArrayLen(n)
	}
}

func (e *encoder) uint(v uint64) {
	if e.err == nil {
		e.err = e.enc.EncodeUint(v)
	}
}

func (e *encoder) int(v int64) {
	if e.err == nil {
		e.err = e.enc.EncodeInt(v)
	}
}

func (e *encoder) bool(v bool) {
	if e.err == nil {
		e.err = e.enc.EncodeBool(v)
	}
}

func (e *encoder) bytes(v []byte) {
	if e.err == nil {
		e.err = e.enc.EncodeBytes(v)
	}
}

func (e *encoder) string(v string) {
	if e.err == nil {
		e.err = e.enc.EncodeString(v)
	}
}

func (e *encoder) nil() {
	if e.err == nil {
		e.err = e.enc.EncodeNil()
	}
}

// EncodeBatch appends the encoding of msgs, the body of one peer frame, to
// dst[:0] and returns it. Passing the previous result as dst reuses its
// storage.
func EncodeBatch(dst []byte, msgs []raft.Message) ([]byte, error) {
	if len(msgs) > math.MaxUint32 {
		return nil, fmt.Errorf("transport: encode batch: %d messages", len(msgs))
	}
	e := getEncoder()
	defer putEncoder(e)
	e.begin(dst)
	for i := range msgs {
		e.add(&msgs[i])
	}
	return e.finish()
}

// decoder reads a batch from a frame body. Every count and length read from
// the wire is checked against the bytes that remain before anything is
// allocated for it, and nothing decoded aliases the body, so the body's
// buffer can be reused as soon as decoding returns.
type decoder struct {
	body []byte
	r    bytes.Reader
	dec  *msgpack.Decoder
	err  error
	// arena holds the Data of every entry and snapshot of a batch: one
	// allocation, sized by the bytes that remain when the first Data is met,
	// instead of one per entry. The decoded messages own it.
	arena []byte
}

var decoders = sync.Pool{New: func() any {
	return &decoder{dec: msgpack.NewDecoder(nil)}
}}

func getDecoder(body []byte) *decoder {
	d := decoders.Get().(*decoder)
	d.body = body
	d.r.Reset(body)
	// bytes.Reader is an io.ByteScanner, so the msgpack decoder reads it
	// directly, with no buffering of its own: d.r.Len() is what remains.
	d.dec.Reset(&d.r)
	return d
}

func putDecoder(d *decoder) {
	d.body, d.arena = nil, nil
	d.r.Reset(nil)
	d.dec.Reset(nil)
	d.err = nil
	decoders.Put(d)
}

// DecodeBatch decodes a frame body written by EncodeBatch. Errors wrap
// ErrMalformed; DecodeBatch never panics, whatever the input.
func DecodeBatch(body []byte) ([]raft.Message, error) {
	d := getDecoder(body)
	defer putDecoder(d)

	n := d.arrayLen("batch", minMessageSize)
	if n < 0 && d.err == nil {
		d.fail("batch", fmt.Errorf("nil"))
	}
	var msgs []raft.Message
	if n > 0 {
		msgs = make([]raft.Message, 0, min(n, maxPrealloc))
	}
	for i := 0; i < n && d.err == nil; i++ {
		var m raft.Message
		d.message(&m)
		if d.err != nil {
			return nil, fmt.Errorf("transport: decode batch: message %d: %w: %v", i, ErrMalformed, d.err)
		}
		msgs = append(msgs, m)
	}
	if d.err != nil {
		return nil, fmt.Errorf("transport: decode batch: %w: %v", ErrMalformed, d.err)
	}
	if rest := d.r.Len(); rest != 0 {
		return nil, fmt.Errorf("transport: decode batch: %w: %d trailing bytes", ErrMalformed, rest)
	}
	return msgs, nil
}

func (d *decoder) message(m *raft.Message) {
	d.fields("message", messageFields)
	m.Group = d.uint("group")
	t := d.uint("type")
	if d.err == nil && (t > math.MaxUint8 || !raft.ValidMessageType(raft.MessageType(t))) {
		d.fail("type", fmt.Errorf("unknown message type %d", t))
	}
	m.Type = raft.MessageType(t)
	m.From = d.uint("from")
	m.To = d.uint("to")
	m.Term = d.uint("term")
	m.LogTerm = d.uint("logterm")
	m.Index = d.uint("index")
	if n := d.arrayLen("entries", minEntrySize); n >= 0 {
		m.Entries = make([]raft.Entry, 0, min(n, maxPrealloc))
		for i := 0; i < n && d.err == nil; i++ {
			var en raft.Entry
			d.fields("entry", entryFields)
			en.Term = d.uint("entry term")
			en.Index = d.uint("entry index")
			en.Type = raft.EntryType(d.uint8("entry type"))
			en.Timestamp = d.int("entry timestamp")
			en.Data = d.bytes("entry data")
			m.Entries = append(m.Entries, en)
		}
	}
	m.Commit = d.uint("commit")
	m.Reject = d.bool("reject")
	m.RejectHint = d.uint("rejecthint")
	m.Context = d.uint("context")
	if d.isNil() {
		return
	}
	s := new(raft.Snapshot)
	d.fields("snapshot", snapshotFields)
	d.fields("snapshot meta", metaFields)
	s.Meta.Index = d.uint("snapshot index")
	s.Meta.Term = d.uint("snapshot term")
	d.fields("snapshot config", configFields)
	s.Meta.Config.Index = d.uint("config index")
	s.Meta.Config.Term = d.uint("config term")
	if n := d.arrayLen("members", minMemberSize); n >= 0 {
		s.Meta.Config.Members = make([]raft.Member, 0, min(n, maxPrealloc))
		for i := 0; i < n && d.err == nil; i++ {
			var mem raft.Member
			d.fields("member", memberFields)
			mem.ID = d.uint("member id")
			mem.Type = raft.MemberType(d.uint8("member type"))
			mem.Addr = d.string("member addr")
			s.Meta.Config.Members = append(s.Meta.Config.Members, mem)
		}
	}
	s.Data = d.bytes("snapshot data")
	m.Snapshot = s
}

// The decoding helpers keep the first error and return zero values after
// it, so callers check d.err once per message.

func (d *decoder) fail(what string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", what, err)
	}
}

// arrayLen reads an array header (-1 for nil) whose elements each take at
// least minSize bytes, and refuses counts the remaining bytes cannot hold.
func (d *decoder) arrayLen(what string, minSize int) int {
	if d.err != nil {
		return -1
	}
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		d.fail(what, err)
		return -1
	}
	if n > 0 && n > d.r.Len()/minSize {
		d.fail(what, fmt.Errorf("%d elements cannot fit in %d remaining bytes", n, d.r.Len()))
		return -1
	}
	return n
}

// fields reads an array header that must announce exactly n fields.
func (d *decoder) fields(what string, n int) {
	if d.err != nil {
		return
	}
	got, err := d.dec.DecodeArrayLen()
	if err != nil {
		d.fail(what, err)
		return
	}
	if got != n {
		d.fail(what, fmt.Errorf("%d fields, want %d", got, n))
	}
}

func (d *decoder) isNil() bool {
	if d.err != nil {
		return true
	}
	c, err := d.dec.PeekCode()
	if err != nil {
		d.fail("snapshot", err)
		return true
	}
	if c == msgpcode.Nil {
		_ = d.dec.DecodeNil() // cannot fail: the code was just peeked
		return true
	}
	return false
}

func (d *decoder) uint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, err := d.dec.DecodeUint64()
	if err != nil {
		d.fail(what, err)
	}
	return v
}

func (d *decoder) uint8(what string) uint8 {
	v := d.uint(what)
	if v > math.MaxUint8 {
		d.fail(what, fmt.Errorf("%d out of range", v))
		return 0
	}
	return uint8(v)
}

func (d *decoder) int(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, err := d.dec.DecodeInt64()
	if err != nil {
		d.fail(what, err)
	}
	return v
}

func (d *decoder) bool(what string) bool {
	if d.err != nil {
		return false
	}
	v, err := d.dec.DecodeBool()
	if err != nil {
		d.fail(what, err)
	}
	return v
}

// rawLen reads a str or bin header (-1 for nil) and checks it against the
// remaining bytes.
func (d *decoder) rawLen(what string) int {
	if d.err != nil {
		return -1
	}
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		d.fail(what, err)
		return -1
	}
	if n > d.r.Len() {
		d.fail(what, fmt.Errorf("%d bytes overrun the %d remaining", n, d.r.Len()))
		return -1
	}
	return n
}

// bytes reads a bin (or str) into the arena; nil stays nil.
func (d *decoder) bytes(what string) []byte {
	n := d.rawLen(what)
	if n <= 0 {
		if n == 0 {
			return []byte{}
		}
		return nil
	}
	if cap(d.arena)-len(d.arena) < n {
		// rawLen checked n <= d.r.Len(), so this arena holds every Data
		// that can follow.
		d.arena = make([]byte, 0, d.r.Len())
	}
	start := len(d.arena)
	d.arena = d.arena[:start+n]
	b := d.arena[start : start+n : start+n] // capped: appending to b never overwrites a neighbour
	if _, err := io.ReadFull(&d.r, b); err != nil {
		d.fail(what, err)
		return nil
	}
	return b
}

func (d *decoder) string(what string) string {
	n := d.rawLen(what)
	if n <= 0 {
		return ""
	}
	// rawLen checked that the bytes are there: convert them in place and
	// skip them, copying once.
	pos := len(d.body) - d.r.Len()
	s := string(d.body[pos : pos+n])
	if _, err := d.r.Seek(int64(n), io.SeekCurrent); err != nil {
		d.fail(what, err)
		return ""
	}
	return s
}
