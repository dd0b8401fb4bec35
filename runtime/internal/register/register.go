// Package register is a hand-written resource for the runtime's own tests, in
// the shape copycatgen emits: a map of read/write/compare-and-set registers.
// Its operations give a linearizability checker a strong sequential model —
// every write is visible to exactly the reads and compare-and-sets ordered
// after it — which a counter's commuting additions cannot.
package register

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"slices"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
)

// Operation codes.
const (
	OpGet runtime.OpCode = 1 // query: key → value (0 if never written)
	OpPut runtime.OpCode = 2 // command: key, value
	OpCAS runtime.OpCode = 3 // command: key, old, new → whether it swapped
)

// Type is the descriptor servers register.
var Type = &runtime.ResourceType{
	Name:       "copycat.test.Register",
	Compaction: runtime.Snapshot,
	Operations: []runtime.Operation{
		{Code: OpGet, Name: "Get", Kind: runtime.Query, Consistency: runtime.Linearizable},
		{Code: OpPut, Name: "Put", Kind: runtime.Command},
		{Code: OpCAS, Name: "CompareAndSet", Kind: runtime.Command},
	},
	New: func() runtime.Resource { return &registers{values: map[string]int64{}} },
}

var errMalformed = errors.New("register: malformed arguments")

type registers struct {
	values map[string]int64
}

// Execute dispatches an operation.
func (r *registers) Execute(_ runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	key, rest, ok := readKey(args)
	if !ok {
		return nil, errMalformed
	}
	switch op {
	case OpGet:
		return binary.AppendVarint(nil, r.values[key]), nil
	case OpPut:
		v, n := binary.Varint(rest)
		if n <= 0 {
			return nil, errMalformed
		}
		r.values[key] = v
		return nil, nil
	case OpCAS:
		old, n := binary.Varint(rest)
		if n <= 0 {
			return nil, errMalformed
		}
		v, m := binary.Varint(rest[n:])
		if m <= 0 {
			return nil, errMalformed
		}
		if r.values[key] != old {
			return []byte{0}, nil
		}
		r.values[key] = v
		return []byte{1}, nil
	}
	return nil, runtime.ErrUnknownOperation
}

// Snapshot writes every register.
func (r *registers) Snapshot(w io.Writer) error {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(r.values)) {
		b = appendKey(b, k)
		b = binary.AppendVarint(b, r.values[k])
	}
	_, err := w.Write(b)
	return err
}

// Restore reads what Snapshot wrote.
func (r *registers) Restore(rd io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rd); err != nil {
		return err
	}
	b := buf.Bytes()
	values := map[string]int64{}
	for len(b) > 0 {
		k, rest, ok := readKey(b)
		if !ok {
			return errMalformed
		}
		v, n := binary.Varint(rest)
		if n <= 0 {
			return errMalformed
		}
		values[k] = v
		b = rest[n:]
	}
	r.values = values
	return nil
}

func appendKey(b []byte, key string) []byte {
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

func readKey(b []byte) (key string, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, false
	}
	return string(b[n : n+int(l)]), b[n+int(l):], true
}

// Client is the typed proxy.
type Client struct{ r *client.Resource }

// Open opens the named register map.
func Open(ctx context.Context, c *client.Client, name string) (*Client, error) {
	r, err := c.Open(ctx, Type, name)
	if err != nil {
		return nil, err
	}
	return &Client{r: r}, nil
}

// Get returns key's value (0 if it was never written).
func (c *Client) Get(ctx context.Context, key string, opts ...client.QueryOption) (int64, error) {
	b, err := c.r.Query(ctx, OpGet, appendKey(nil, key), opts...)
	if err != nil {
		return 0, err
	}
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, errMalformed
	}
	return v, nil
}

// Put sets key to v.
func (c *Client) Put(ctx context.Context, key string, v int64) error {
	_, err := c.r.Command(ctx, OpPut, binary.AppendVarint(appendKey(nil, key), v))
	return err
}

// CompareAndSet sets key to v if it holds old, and reports whether it did.
func (c *Client) CompareAndSet(ctx context.Context, key string, old, v int64) (bool, error) {
	b, err := c.r.Command(ctx, OpCAS, binary.AppendVarint(binary.AppendVarint(appendKey(nil, key), old), v))
	if err != nil {
		return false, err
	}
	if len(b) != 1 {
		return false, errMalformed
	}
	return b[0] == 1, nil
}

// Resource returns the underlying handle.
func (c *Client) Resource() *client.Resource { return c.r }
