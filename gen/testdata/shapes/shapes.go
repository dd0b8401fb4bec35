// Package shapes holds every method shape and parameter type the generator
// accepts.
package shapes

import (
	"errors"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// Celsius is a named basic type.
type Celsius float64

// Point is a user struct crossing the wire.
type Point struct {
	X, Y int
	Tag  string `msgpack:"tag"`
}

// ErrFull is returned when the store is full.
//
//copycat:error
var ErrFull = errors.New("shapes: full")

// ErrA and ErrB share a declaration.
//
//copycat:error
var ErrA, ErrB = errors.New("shapes: a"), errors.New("shapes: b")

// Store exercises the shapes.
//
//copycat:resource name=example.com/shapes.Store compaction=release
type Store struct {
	commits map[string]runtime.Commit
	data    map[string][]byte
	points  []Point
	opened  int
}

// Put stores value under key; it releases the commit it replaces.
//
//copycat:command
func (s *Store) Put(c runtime.Commit, key string, value []byte) error {
	if s.commits == nil {
		s.commits = map[string]runtime.Commit{}
		s.data = map[string][]byte{}
	}
	if prev, ok := s.commits[key]; ok {
		prev.Release()
	}
	s.commits[key], s.data[key] = c, value
	return nil
}

// Basics takes one of each basic type.
//
//copycat:command code=7
func (s *Store) Basics(b bool, i int, i8 int8, u uint16, u64 uint64, f32 float32, f64 float64, str string, r rune, by byte) {
}

// Times takes time values and a named float, and returns a named result.
//
//copycat:command
func (s *Store) Times(d time.Duration, at time.Time, temp Celsius) (when time.Time) {
	return at.Add(d)
}

// Composite takes user structs, slices, maps, pointers and arrays.
//
//copycat:command
func (s *Store) Composite(p Point, ps []Point, m map[string]int, ptr *Point, arr [2]uint32) ([]Point, error) {
	if len(s.points) > 100 {
		return nil, ErrFull
	}
	s.points = append(s.points, p)
	return s.points, nil
}

// Sum adds numbers, variadic.
//
//copycat:command
func (s *Store) Sum(base int64, more ...int64) int64 {
	for _, m := range more {
		base += m
	}
	return base
}

// Reserved has parameters named like the client's own variables.
//
//copycat:command
func (s *Store) Reserved(ctx string, err int, opts bool, result string, args []byte, data map[string]string) {
}

// Lookup reads a key with the Commit's time at hand.
//
//copycat:query consistency=lease
func (s *Store) Lookup(c runtime.Commit, key string) ([]byte, error) {
	_ = c.Time()
	return s.data[key], nil
}

// Size is a linearizable query (the default) returning a point.
//
//copycat:query
func (s *Store) Size() Point { return Point{X: len(s.data)} }

// SessionOpened counts sessions.
func (s *Store) SessionOpened(runtime.Session) { s.opened++ }

// SessionClosed is the other half of the listener.
func (s *Store) SessionClosed(runtime.Session, bool) {}

// Delete frees what the store holds.
func (s *Store) Delete() { s.data = nil }

// helper is not an operation.
func (s *Store) helper() {}
