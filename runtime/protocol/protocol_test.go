package protocol

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

func TestRoundTrip(t *testing.T) {
	in := &Message{Type: Command, ID: 7, Session: 3, Sequence: 9, Resource: 4, Op: 2, Args: []byte("x"),
		Err:    &session.WireError{Kind: session.ErrorDeclared, Code: 5, Message: "m"},
		Events: []session.Event{{Resource: 1, Code: 2, Data: []byte("d")}}, Members: []string{"a"}}
	b, err := Encode(in)
	require.NoError(t, err)
	out, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, in, out)
}

func TestDecodeRefusesGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {0xc1}, {0x90}, {0x91, 0x00}, {0x91, 0x7f}} {
		_, err := Decode(b)
		assert.ErrorIs(t, err, ErrMalformed, "%x", b)
	}
}

func TestErrorOf(t *testing.T) {
	declared := errors.New("declared")
	typ := &runtime.ResourceType{Errors: []runtime.ErrorType{{Code: 3, Err: declared}}}
	code, _ := runtime.RuntimeErrorCode(runtime.ErrSessionExpired)
	assert.ErrorIs(t, ErrorOf(&session.WireError{Kind: session.ErrorRuntime, Code: code}, nil), runtime.ErrSessionExpired)
	assert.ErrorIs(t, ErrorOf(&session.WireError{Kind: session.ErrorDeclared, Code: 3}, typ), declared)
	var app *runtime.ApplicationError
	assert.ErrorAs(t, ErrorOf(&session.WireError{Kind: session.ErrorApplication, Message: "x"}, typ), &app)
	assert.ErrorAs(t, ErrorOf(&session.WireError{Kind: session.ErrorDeclared, Code: 99, Message: "y"}, typ), &app)
	assert.NoError(t, ErrorOf(nil, nil))
}

func FuzzDecode(f *testing.F) {
	b, _ := Encode(&Message{Type: Query, ID: 1, Args: []byte("a")})
	f.Add(b)
	b, _ = Encode(&Message{Type: AdminAdd, ID: 2, TimeoutNs: 5e9, Args: EncodeAdminRequest(AdminRequest{Member: 4, Addr: "h:1", Type: 2})})
	f.Add(b)
	b, _ = Encode(&Message{Type: Response, ID: 3, Result: EncodeClusterStatus(sampleStatus())})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(m)
		require.NoError(t, err)
		_, err = Decode(again)
		require.NoError(t, err)
	})
}

// The hand-written codec round-trips every field, at every integer width.
func TestCodec_AllFieldsAllWidths(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		in := &Message{Type: Response, ID: v, Session: v, Sequence: v, Index: v, Resource: v, Op: runtime.OpCode(v & 0xffff),
			Args: make([]byte, v%300), Consistency: runtime.Sequential, ClientID: string(make([]byte, v%70)), ResType: "t", Name: "n",
			TimeoutNs: -int64(v >> 1), CommandAck: v, EventAck: v, Status: NotLeader, Leader: "l", Members: []string{"a", "b"},
			Err: &session.WireError{Kind: session.ErrorDeclared, Code: uint16(v), Message: "m"}, Result: []byte{}, EventIndex: v, PrevIndex: v,
			Events: []session.Event{{Resource: v, Code: 3, Data: nil}}}
		b, err := Encode(in)
		require.NoError(t, err)
		out, err := Decode(b)
		require.NoError(t, err, "v=%d", v)
		assert.Equal(t, in, out, "v=%d", v)
	}
}

func BenchmarkCodec(b *testing.B) {
	m := &Message{Type: Command, ID: 12345, Session: 77, Sequence: 99, Resource: 3, Op: 14295, Args: make([]byte, 128)}
	b.ReportAllocs()
	var buf []byte
	for i := 0; i < b.N; i++ {
		buf, _ = AppendEncode(buf[:0], m)
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
