// Package state holds snapshot state the generator writes helpers for:
// unexported struct types, sessions, pointers, nested containers, and an
// embedded resource with its own Snapshot/Restore.
package state

import (
	"encoding/json"
	"io"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// entry is a map value with a TTL timer Init rebuilds.
type entry struct {
	value   string
	version uint64
	owner   runtime.Session
	expires time.Time
	timer   runtime.Timer
	meta    *meta
}

// meta is reached through a pointer.
type meta struct {
	tags   []string
	counts map[string]int
}

// waiter is one session waiting in a FIFO queue.
type waiter struct {
	session runtime.Session
	index   uint64
}

// queue is a named slice of an unexported type.
type queue []waiter

// Journal has its own Snapshot and Restore.
//
//copycat:resource
type Journal struct {
	lines []string
}

// Note adds a line.
//
//copycat:command
func (j *Journal) Note(line string) int {
	j.lines = append(j.lines, line)
	return len(j.lines)
}

// Snapshot writes the lines as JSON.
func (j *Journal) Snapshot(w io.Writer) error { return json.NewEncoder(w).Encode(j.lines) }

// Restore reads them back.
func (j *Journal) Restore(r io.Reader) error { return json.NewDecoder(r).Decode(&j.lines) }

// Registry keeps entries owned by sessions and a queue of waiting
// sessions, and embeds a Journal.
//
//copycat:resource
type Registry struct {
	Journal
	ctx      runtime.Context
	entries  map[string]entry
	byOwner  map[uint64][]*entry
	waiters  queue
	holder   runtime.Session
	recent   [2]runtime.Session
	watchers map[string][]runtime.Session
	grid     [][]int32
	nothing  *meta
}

// Init keeps the context; the sessions of a restored snapshot are already
// resolved when it runs.
func (r *Registry) Init(ctx runtime.Context) { r.ctx = ctx }

// Put stores a value owned by the calling session.
//
//copycat:command
func (r *Registry) Put(c runtime.Commit, key, value string, tags []string) uint64 {
	if r.entries == nil {
		r.entries = map[string]entry{}
		r.byOwner = map[uint64][]*entry{}
		r.watchers = map[string][]runtime.Session{}
	}
	e := entry{value: value, version: c.Index(), owner: c.Session(), expires: c.Time().Add(time.Minute), meta: &meta{tags: tags, counts: map[string]int{key: len(value)}}}
	r.entries[key] = e
	r.byOwner[c.Session().ID()] = append(r.byOwner[c.Session().ID()], &e)
	r.watchers[key] = append(r.watchers[key], c.Session())
	r.grid = append(r.grid, []int32{int32(len(key)), int32(len(value))})
	return e.version
}

// Wait queues the calling session; the first waiter holds.
//
//copycat:command
func (r *Registry) Wait(c runtime.Commit) int {
	if r.holder == nil {
		r.holder = c.Session()
	}
	r.waiters = append(r.waiters, waiter{session: c.Session(), index: c.Index()})
	r.recent[1], r.recent[0] = r.recent[0], c.Session()
	return len(r.waiters)
}

// Owner returns the ID of the session owning key, 0 if none.
//
//copycat:query
func (r *Registry) Owner(key string) uint64 {
	if e, ok := r.entries[key]; ok {
		return e.owner.ID()
	}
	return 0
}

// Holder returns the ID of the holding session.
//
//copycat:query
func (r *Registry) Holder() uint64 {
	if r.holder == nil {
		return 0
	}
	return r.holder.ID()
}
