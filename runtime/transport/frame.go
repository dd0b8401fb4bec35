package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// DefaultMaxFrameSize is the default limit on a frame's body: 16 MiB.
const DefaultMaxFrameSize = 16 << 20

// frameHeaderSize is the size of a frame's big-endian length prefix.
const frameHeaderSize = 4

// initialFrameChunk bounds how much ReadFrame allocates before the bytes of a
// large frame have actually arrived, so a peer announcing a big frame and
// sending nothing costs little memory.
const initialFrameChunk = 64 << 10

// Conn reads and writes length-prefixed frames over a net.Conn: each frame is
// a 4-byte big-endian body length followed by the body. Peers and clients
// share the format, so the client protocol can reuse Conn on the same port.
//
// One goroutine may read while another writes; concurrent reads, or
// concurrent writes, must be serialised by the caller.
type Conn struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	max int
	buf []byte // body of the last frame read, reused
	hdr [frameHeaderSize]byte
}

// NewConn returns a Conn over nc that refuses frames whose body exceeds
// maxFrameSize bytes (DefaultMaxFrameSize if maxFrameSize <= 0).
func NewConn(nc net.Conn, maxFrameSize int) *Conn {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	return &Conn{
		nc:  nc,
		r:   bufio.NewReaderSize(nc, 32<<10),
		w:   bufio.NewWriterSize(nc, 32<<10),
		max: maxFrameSize,
	}
}

// NetConn returns the underlying connection, for deadlines and addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// MaxFrameSize returns the largest frame body the Conn reads or writes.
func (c *Conn) MaxFrameSize() int { return c.max }

// SetMaxFrameSize changes the limit; call it while no read or write is in
// progress (typically right after a handshake, which uses a small limit).
func (c *Conn) SetMaxFrameSize(n int) {
	if n <= 0 {
		n = DefaultMaxFrameSize
	}
	c.max = n
}

// ReadFrame reads the next frame and returns its body, which stays valid
// until the next call to ReadFrame. It returns io.EOF if the connection ends
// cleanly between frames, an error wrapping ErrTruncated (and
// io.ErrUnexpectedEOF) if it ends inside one, and an error wrapping
// ErrFrameTooLarge if the length prefix exceeds the maximum. After any error
// the caller should close the connection.
func (c *Conn) ReadFrame() ([]byte, error) {
	n, err := io.ReadFull(c.r, c.hdr[:])
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("transport: frame header truncated after %d bytes: %w: %w", n, ErrTruncated, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("transport: read frame header: %w", err)
	}
	size := binary.BigEndian.Uint32(c.hdr[:])
	if uint64(size) > uint64(c.max) {
		return nil, fmt.Errorf("transport: frame of %d bytes exceeds the maximum of %d: %w", size, c.max, ErrFrameTooLarge)
	}
	body, err := c.readBody(int(size))
	if err != nil {
		return nil, err
	}
	return body, nil
}

// readBody reads a body of n bytes (n already checked against the maximum)
// into c.buf, growing it only as bytes arrive.
func (c *Conn) readBody(n int) ([]byte, error) {
	if n <= cap(c.buf) {
		c.buf = c.buf[:n]
		if got, err := io.ReadFull(c.r, c.buf); err != nil {
			return nil, c.bodyErr(got, n, err)
		}
		return c.buf, nil
	}
	buf := c.buf[:0]
	for len(buf) < n {
		want := min(n, max(2*cap(buf), initialFrameChunk))
		if want > cap(buf) {
			grown := make([]byte, len(buf), want)
			copy(grown, buf)
			buf = grown
		}
		start := len(buf)
		buf = buf[:want]
		if got, err := io.ReadFull(c.r, buf[start:]); err != nil {
			c.buf = buf[:0]
			return nil, c.bodyErr(start+got, n, err)
		}
	}
	c.buf = buf
	return buf, nil
}

func (c *Conn) bodyErr(got, n int, err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("transport: frame truncated after %d of %d bytes: %w: %w", got, n, ErrTruncated, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("transport: read frame body (%d of %d bytes): %w", got, n, err)
}

// WriteFrame writes one frame into the Conn's buffer; call Flush to send it.
// Bodies larger than the maximum frame size are refused with an error
// wrapping ErrFrameTooLarge and nothing is written.
func (c *Conn) WriteFrame(body []byte) error {
	if len(body) > c.max {
		return fmt.Errorf("transport: frame of %d bytes exceeds the maximum of %d: %w", len(body), c.max, ErrFrameTooLarge)
	}
	var hdr [frameHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, err := c.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("transport: write frame: %w", err)
	}
	if _, err := c.w.Write(body); err != nil {
		return fmt.Errorf("transport: write frame: %w", err)
	}
	return nil
}

// Flush sends every buffered frame.
func (c *Conn) Flush() error {
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("transport: flush: %w", err)
	}
	return nil
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }
