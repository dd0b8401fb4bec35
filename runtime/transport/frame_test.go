package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// pipeConn returns the reading side of a pipe whose other side receives raw
// and is then closed.
func pipeConn(t *testing.T, raw []byte, maxFrame int) *Conn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close() })
	go func() {
		b.Write(raw)
		b.Close()
	}()
	return NewConn(a, maxFrame)
}

func header(n uint32) []byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], n)
	return h[:]
}

func TestConnRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	bodies := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("abc"), 100_000)}
	go func() {
		w := NewConn(a, 0)
		for _, body := range bodies {
			if err := w.WriteFrame(body); err != nil {
				t.Error(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Error(err)
		}
		a.Close()
	}()
	r := NewConn(b, 0)
	for i, want := range bodies {
		got, err := r.ReadFrame()
		check(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestConnReadErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want []error
	}{
		{"clean end", nil, []error{io.EOF}},
		{"oversized", append(header(2048), make([]byte, 10)...), []error{ErrFrameTooLarge}},
		{"huge length", header(0xffffffff), []error{ErrFrameTooLarge}},
		{"truncated header", []byte{0, 0}, []error{ErrTruncated, io.ErrUnexpectedEOF}},
		{"truncated body", append(header(100), make([]byte, 10)...), []error{ErrTruncated, io.ErrUnexpectedEOF}},
		{"truncated large body", append(header(1000), make([]byte, 999)...), []error{ErrTruncated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pipeConn(t, tt.raw, 1024)
			_, err := c.ReadFrame()
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("ReadFrame() = %v, want an error matching %v", err, want)
				}
			}
		})
	}
}

// A frame larger than the first allocation chunk is read in growing steps.
func TestConnReadGrowsGradually(t *testing.T) {
	body := make([]byte, 3*initialFrameChunk+17)
	for i := range body {
		body[i] = byte(i)
	}
	c := pipeConn(t, append(header(uint32(len(body))), body...), 0)
	got, err := c.ReadFrame()
	check(t, err)
	if !bytes.Equal(got, body) {
		t.Fatal("body corrupted")
	}
}

func TestConnWriteTooLarge(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(a, 1024)
	if err := c.WriteFrame(make([]byte, 1025)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteFrame = %v, want ErrFrameTooLarge", err)
	}
	if c.w.Buffered() != 0 {
		t.Fatal("a refused frame left bytes in the buffer")
	}
}
