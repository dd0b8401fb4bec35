//go:build !copycatgen

package dmap

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/copycat-go/copycat/runtime/client"
)

// Typed is a client of a Map whose values are of type V, encoded with
// msgpack in a canonical form (map entries sorted at every depth, so equal
// values encode to equal bytes and the conditional operations compare them
// as they should). Values written by
// other means that do not decode as V are reported as errors by the reads
// and dropped (counted by DroppedEvents) from events.
type Typed[V any] struct {
	m       *MapClient
	dropped atomic.Uint64
}

// TypedEntry is one key and its decoded value.
type TypedEntry[V any] struct {
	Key   string
	Value V
}

// TypedPage is one page of decoded entries in key order.
type TypedPage[V any] struct {
	Entries []TypedEntry[V]
	// More says whether entries follow; the next page starts at Next.
	More bool
	Next string
}

// TypedChanged is a Changed event with decoded values; Old and New are
// zero where the untyped event has nil.
type TypedChanged[V any] struct {
	Kind     Kind
	Key      string
	Old, New V
	Expired  bool
}

// OpenTyped opens the Map named name, creating it if it does not exist, as
// a map of V values.
func OpenTyped[V any](ctx context.Context, c *client.Client, name string) (*Typed[V], error) {
	m, err := OpenMap(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return NewTyped[V](m), nil
}

// NewTyped wraps an open MapClient.
func NewTyped[V any](m *MapClient) *Typed[V] { return &Typed[V]{m: m} }

// Untyped returns the MapClient underneath.
func (t *Typed[V]) Untyped() *MapClient { return t.m }

// encode writes v in canonical form: maps, at every depth, with their
// entries sorted by encoded key, so equal values give equal bytes.
func encode[V any](v V) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("dmap: encode %T: %w", v, err)
	}
	var buf bytes.Buffer
	if err := canonical(msgpack.NewDecoder(bytes.NewReader(b)), msgpack.NewEncoder(&buf)); err != nil {
		return nil, fmt.Errorf("dmap: encode %T: %w", v, err)
	}
	return buf.Bytes(), nil
}

// canonical copies one msgpack value from dec to enc, sorting map entries.
func canonical(dec *msgpack.Decoder, enc *msgpack.Encoder) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := dec.DecodeMapLen()
		if err != nil {
			return err
		}
		type pair struct{ k, v []byte }
		pairs := make([]pair, 0, min(n, 1024))
		for i := 0; i < n; i++ {
			var k, v bytes.Buffer
			if err := canonical(dec, msgpack.NewEncoder(&k)); err != nil {
				return err
			}
			if err := canonical(dec, msgpack.NewEncoder(&v)); err != nil {
				return err
			}
			pairs = append(pairs, pair{k.Bytes(), v.Bytes()})
		}
		slices.SortFunc(pairs, func(a, b pair) int { return bytes.Compare(a.k, b.k) })
		if err := enc.EncodeMapLen(n); err != nil {
			return err
		}
		for _, p := range pairs {
			if _, err := enc.Writer().Write(p.k); err != nil {
				return err
			}
			if _, err := enc.Writer().Write(p.v); err != nil {
				return err
			}
		}
		return nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return err
		}
		if err := enc.EncodeArrayLen(n); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := canonical(dec, enc); err != nil {
				return err
			}
		}
		return nil
	}
	raw, err := dec.DecodeRaw()
	if err != nil {
		return err
	}
	_, err = enc.Writer().Write(raw)
	return err
}

// decode decodes b; nil (no value) is the zero V and false.
func decode[V any](b []byte) (V, bool, error) {
	var v V
	if b == nil {
		return v, false, nil
	}
	if err := msgpack.Unmarshal(b, &v); err != nil {
		return v, true, fmt.Errorf("dmap: decode %T: %w", v, err)
	}
	return v, true, nil
}

// Get returns the key's value and whether it has one.
func (t *Typed[V]) Get(ctx context.Context, key string, opts ...client.QueryOption) (V, bool, error) {
	b, err := t.m.Get(ctx, key, opts...)
	if err != nil {
		var zero V
		return zero, false, err
	}
	return decode[V](b)
}

// Set sets the key's value (see MapClient.Put), without reading the old one.
func (t *Typed[V]) Set(ctx context.Context, key string, v V, ttl time.Duration) error {
	_, _, err := t.Put(ctx, key, v, ttl)
	return err
}

// Put sets the key's value and returns the value it replaced, if any.
func (t *Typed[V]) Put(ctx context.Context, key string, v V, ttl time.Duration) (old V, had bool, err error) {
	b, err := encode(v)
	if err != nil {
		return old, false, err
	}
	ob, err := t.m.Put(ctx, key, b, ttl)
	if err != nil {
		return old, false, err
	}
	return decode[V](ob)
}

// PutIfAbsent sets the key's value if it has none, and reports whether it did.
func (t *Typed[V]) PutIfAbsent(ctx context.Context, key string, v V, ttl time.Duration) (bool, error) {
	b, err := encode(v)
	if err != nil {
		return false, err
	}
	return t.m.PutIfAbsent(ctx, key, b, ttl)
}

// Replace sets the key's value if it has one, and reports whether it did.
func (t *Typed[V]) Replace(ctx context.Context, key string, v V, ttl time.Duration) (bool, error) {
	b, err := encode(v)
	if err != nil {
		return false, err
	}
	return t.m.Replace(ctx, key, b, ttl)
}

// CompareAndReplace sets the key's value to v if it holds expect (compared
// as encoded), and reports whether it did.
func (t *Typed[V]) CompareAndReplace(ctx context.Context, key string, expect, v V, ttl time.Duration) (bool, error) {
	eb, err := encode(expect)
	if err != nil {
		return false, err
	}
	b, err := encode(v)
	if err != nil {
		return false, err
	}
	return t.m.CompareAndReplace(ctx, key, eb, b, ttl)
}

// Remove removes the key and returns the value it had, if any.
func (t *Typed[V]) Remove(ctx context.Context, key string) (V, bool, error) {
	b, err := t.m.Remove(ctx, key)
	if err != nil {
		var zero V
		return zero, false, err
	}
	return decode[V](b)
}

// RemoveIfEquals removes the key if it holds expect (compared as encoded),
// and reports whether it did.
func (t *Typed[V]) RemoveIfEquals(ctx context.Context, key string, expect V) (bool, error) {
	eb, err := encode(expect)
	if err != nil {
		return false, err
	}
	return t.m.RemoveIfEquals(ctx, key, eb)
}

// ContainsKey reports whether the key has a value.
func (t *Typed[V]) ContainsKey(ctx context.Context, key string, opts ...client.QueryOption) (bool, error) {
	return t.m.ContainsKey(ctx, key, opts...)
}

// Size returns the number of keys.
func (t *Typed[V]) Size(ctx context.Context, opts ...client.QueryOption) (int, error) {
	return t.m.Size(ctx, opts...)
}

// Keys returns a page of keys (see MapClient.Keys).
func (t *Typed[V]) Keys(ctx context.Context, from string, limit int, opts ...client.QueryOption) (KeyPage, error) {
	return t.m.Keys(ctx, from, limit, opts...)
}

// Entries returns a page of decoded entries (see MapClient.Entries).
func (t *Typed[V]) Entries(ctx context.Context, from string, limit int, opts ...client.QueryOption) (TypedPage[V], error) {
	p, err := t.m.Entries(ctx, from, limit, opts...)
	if err != nil {
		return TypedPage[V]{}, err
	}
	out := TypedPage[V]{Entries: make([]TypedEntry[V], len(p.Entries)), More: p.More, Next: p.Next}
	for i, e := range p.Entries {
		v, _, err := decode[V](e.Value)
		if err != nil {
			return TypedPage[V]{}, fmt.Errorf("dmap: key %q: %w", e.Key, err)
		}
		out.Entries[i] = TypedEntry[V]{Key: e.Key, Value: v}
	}
	return out, nil
}

// Clear removes every key.
func (t *Typed[V]) Clear(ctx context.Context) error { return t.m.Clear(ctx) }

// OnChanged calls f with each change event this client's session receives
// (after Listen), decoded; an event whose values do not decode as V is
// counted by DroppedEvents instead.
func (t *Typed[V]) OnChanged(f func(TypedChanged[V])) (cancel func()) {
	return t.m.OnChanged(func(e Changed) {
		old, _, err1 := decode[V](e.Old)
		nw, _, err2 := decode[V](e.New)
		if err1 != nil || err2 != nil {
			t.dropped.Add(1)
			return
		}
		f(TypedChanged[V]{Kind: e.Kind, Key: e.Key, Old: old, New: nw, Expired: e.Expired})
	})
}

// Watch is MapClient.Watch with decoded events.
func (t *Typed[V]) Watch(ctx context.Context, keys []string, f func(TypedChanged[V])) (stop func(context.Context) error, err error) {
	cancel := t.OnChanged(f)
	if err := t.m.Listen(ctx, keys); err != nil {
		cancel()
		return nil, err
	}
	return func(ctx context.Context) error {
		err := t.m.Unlisten(ctx)
		cancel()
		return err
	}, nil
}

// DroppedEvents counts the events that could not be decoded, here or by
// the MapClient underneath.
func (t *Typed[V]) DroppedEvents() uint64 { return t.dropped.Load() + t.m.DroppedEvents() }
