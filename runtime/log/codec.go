package log

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime/raft"
)

// entryFormat is the version written in front of every encoded entry.
const entryFormat = 1

// encodeEntry encodes the fields of e that hraft.Log does not carry itself
// (Index and Term go in hraft.Log.Index and .Term) as
//
//	uint(entryFormat) [uint(Type), int(Timestamp), bin(Data) | nil]
//
// by hand rather than by reflection: it is on the append path and its layout
// is a file format.
func encodeEntry(e *raft.Entry) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(e.Data) + 24)
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	if err := encodeEntryTo(enc, e); err != nil {
		return nil, fmt.Errorf("log: encode entry %d: %w", e.Index, err)
	}
	return buf.Bytes(), nil
}

func encodeEntryTo(enc *msgpack.Encoder, e *raft.Entry) error {
	if err := enc.EncodeUint(entryFormat); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeUint(uint64(e.Type)); err != nil {
		return err
	}
	if err := enc.EncodeInt(e.Timestamp); err != nil {
		return err
	}
	return enc.EncodeBytes(e.Data)
}

// decodeEntry fills e's Type, Timestamp and Data from data. Garbage yields an
// error wrapping ErrCorrupt, never a panic and never an allocation larger
// than data.
func decodeEntry(data []byte, e *raft.Entry) error {
	if err := decodeEntryFrom(data, e); err != nil {
		return fmt.Errorf("%w: entry %d: %v", ErrCorrupt, e.Index, err)
	}
	return nil
}

func decodeEntryFrom(data []byte, e *raft.Entry) error {
	r := bytes.NewReader(data)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r) // *bytes.Reader is a ByteScanner: no buffering, r.Len() stays exact

	v, err := dec.DecodeUint64()
	if err != nil {
		return fmt.Errorf("format version: %w", err)
	}
	if v != entryFormat {
		return fmt.Errorf("unsupported entry format %d", v)
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return fmt.Errorf("fields: %w", err)
	}
	if n != 3 {
		return fmt.Errorf("%d fields, want 3", n)
	}
	typ, err := dec.DecodeUint64()
	if err != nil {
		return fmt.Errorf("type: %w", err)
	}
	switch t := raft.EntryType(typ); {
	case uint64(t) != typ:
		return fmt.Errorf("unknown entry type %d", typ)
	case t != raft.EntryNormal && t != raft.EntryNoOp && t != raft.EntryConfig:
		return fmt.Errorf("unknown entry type %d", typ)
	}
	ts, err := dec.DecodeInt64()
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	size, err := dec.DecodeBytesLen()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	var payload []byte
	if size >= 0 {
		if size > r.Len() {
			return fmt.Errorf("data of %d bytes, %d left", size, r.Len())
		}
		payload = make([]byte, size)
		if err := dec.ReadFull(payload); err != nil {
			return fmt.Errorf("data: %w", err)
		}
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	e.Type, e.Timestamp, e.Data = raft.EntryType(typ), ts, payload
	return nil
}
