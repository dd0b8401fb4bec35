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
