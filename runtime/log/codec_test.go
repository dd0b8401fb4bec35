package log

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime/raft"
)

func TestEntryCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    raft.Entry
	}{
		{"zero", raft.Entry{}},
		{"nil data", raft.Entry{Type: raft.EntryNoOp, Timestamp: 1}},
		{"empty data", raft.Entry{Type: raft.EntryNormal, Data: []byte{}}},
		{"config", raft.Entry{Type: raft.EntryConfig, Timestamp: -5, Data: []byte("members")}},
		{"large", raft.Entry{Timestamp: 1 << 62, Data: bytes.Repeat([]byte{0xc1}, 70000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeEntry(&tt.e)
			require.NoError(t, err)
			var got raft.Entry
			require.NoError(t, decodeEntry(b, &got))
			assert.Equal(t, tt.e, got)
		})
	}
}

func TestDecodeEntryRejectsGarbage(t *testing.T) {
	good, err := encodeEntry(&raft.Entry{Type: raft.EntryConfig, Timestamp: 7, Data: []byte("abc")})
	require.NoError(t, err)
	enc := func(f func(*msgpack.Encoder)) []byte {
		var b bytes.Buffer
		f(msgpack.NewEncoder(&b))
		return b.Bytes()
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"two fields", enc(func(e *msgpack.Encoder) { e.EncodeUint(1); e.EncodeArrayLen(2); e.EncodeUint(0); e.EncodeInt(0) })},
		{"unknown type", enc(func(e *msgpack.Encoder) {
			e.EncodeUint(1)
			e.EncodeArrayLen(3)
			e.EncodeUint(9)
			e.EncodeInt(0)
			e.EncodeBytes(nil)
		})},
		{"type overflow", enc(func(e *msgpack.Encoder) {
			e.EncodeUint(1)
			e.EncodeArrayLen(3)
			e.EncodeUint(256)
			e.EncodeInt(0)
			e.EncodeBytes(nil)
		})},
		{"huge data length", []byte{0x01, 0x93, 0x00, 0x00, 0xc6, 0xff, 0xff, 0xff, 0xff}},
		{"string instead of array", enc(func(e *msgpack.Encoder) { e.EncodeUint(1); e.EncodeString("abc") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e raft.Entry
			assert.ErrorIs(t, decodeEntry(tt.data, &e), ErrCorrupt)
		})
	}
}

// FuzzDecodeEntry checks that the decoder never panics on any input and that
// whatever it accepts survives an encode/decode round trip unchanged.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []raft.Entry{
		{},
		{Type: raft.EntryNoOp, Timestamp: 1700000000000000000},
		{Type: raft.EntryConfig, Timestamp: -1, Data: []byte("config")},
		{Data: bytes.Repeat([]byte("x"), 300)},
	} {
		b, err := encodeEntry(&e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e raft.Entry
		if err := decodeEntry(data, &e); err != nil {
			return
		}
		b, err := encodeEntry(&e)
		require.NoError(t, err)
		var again raft.Entry
		require.NoError(t, decodeEntry(b, &again))
		require.Equal(t, e, again)
	})
}
