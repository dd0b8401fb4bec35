package transport

import "errors"

// Sentinel errors callers branch on with errors.Is. Errors returned by this
// package wrap them with context ("transport: frame of 20000000 bytes exceeds
// the maximum of 16777216: frame too large").
var (
	// ErrFrameTooLarge is returned when a frame's length prefix exceeds the
	// connection's maximum frame size, or when a caller tries to write such a
	// frame. The connection must be closed: the stream cannot be resynchronised.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrTruncated is returned when a connection ends in the middle of a frame.
	// It also wraps io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("truncated frame")
	// ErrMalformed is returned when a frame's body is not a valid encoding of
	// what the protocol expects: bad msgpack, wrong field counts, unknown
	// message types, lengths that overrun the frame, trailing bytes.
	ErrMalformed = errors.New("malformed frame body")
	// ErrRefused is returned by Handshake when the acceptor refuses the
	// connection; the error text carries the acceptor's reason.
	ErrRefused = errors.New("connection refused by peer")
	// ErrClosed is returned by operations on a closed transport.
	ErrClosed = errors.New("transport closed")
)
