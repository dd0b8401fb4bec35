// Package dmap is a replicated map from string keys to []byte values, with
// times to live, change events filtered by key, and bounded pages for
// listing: Copycat's distributed map.
//
// Register MapType with the members and open an instance by name:
//
//	srv, err := server.New(cfg, dmap.MapType)
//	...
//	m, err := dmap.OpenMap(ctx, cli, "sessions")
//	old, err := m.Put(ctx, "a", []byte("1"), 0)              // no expiry
//	ok, err := m.PutIfAbsent(ctx, "b", []byte("2"), time.Minute)
//	v, err := m.Get(ctx, "a")
//	page, err := m.Entries(ctx, "", 100)                     // first 100, by key
//	page, err = m.Entries(ctx, page.Next, 100)               // while page.More
//
//	stop, err := m.Watch(ctx, []string{"a"}, func(e dmap.Changed) { ... })
//
// Values of any msgpack-encodable type go through Typed:
//
//	users, err := dmap.OpenTyped[User](ctx, cli, "users")
//	err = users.Set(ctx, "ada", User{Name: "Ada"}, 0)
//	u, ok, err := users.Get(ctx, "ada")
//
// # Missing keys and empty values
//
// Get returns nil for a missing key. A key may hold an empty value, which
// crosses the wire as an empty (or nil) slice: ContainsKey tells the two
// apart. Typed never stores an empty encoding, so its Get is exact.
//
// # Expiry
//
// A write with a positive ttl removes the key once ttl has passed on the
// state machine's clock (the leader's timestamps on the log): at the same
// point of the log on every member, whichever member leads by then. The
// removal is published as a Changed event of kind Removed with Expired set.
// A later write of the key without a ttl makes it permanent again.
//
// # Events
//
// A session receives Changed events after it calls Listen, for every key or
// for the keys it names, until Unlisten or its end; a new Listen replaces
// the session's filter. Watch does the Listen and the local OnChanged in
// one call. Only listening sessions get events, so a map written often
// costs nothing to the clients that do not watch it.
//
// # Compaction
//
// The map is a release-mode resource: its state is, for each key, the
// commits its current value depends on (and the Listen commits of listening
// sessions). That is the Put or PutIfAbsent that last set the key
// unconditionally, followed by every Replace or CompareAndReplace that
// succeeded on the key since: a conditional write replays correctly only
// after what made its condition true, so replaying the live commits in log
// order rebuilds the same map. All of a key's commits are released together
// when a later Put, a Remove, a Clear or the key's expiry supersedes them,
// as is every command that holds nothing once applied (a failed conditional
// write, a Remove, Clear, Unlisten). The log thus keeps one entry per live
// key, plus the conditional writes made to it since its last Put: a key
// updated only by Replace or CompareAndReplace keeps its whole chain until
// a Put rewrites it.
package dmap

//go:generate go run ../../cmd/copycatgen

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// MaxPage is the most keys or entries one Keys or Entries call returns.
const MaxPage = 1000

// Map is a replicated map of string keys to []byte values.
//
//copycat:resource name=copycat.map compaction=release
type Map struct {
	ctx       runtime.Context
	entries   map[string]*entry
	listeners map[uint64]*listener
}

// entry is a key's value and the commits it depends on: the put that set
// the key, then the conditional writes that replaced its value since, in
// log order.
type entry struct {
	value    []byte
	commits  []runtime.Commit
	deadline time.Time // zero: never expires
	timer    runtime.Timer
}

// listener is a listening session and the Listen commit that registered it.
type listener struct {
	session runtime.Session
	commit  runtime.Commit
	keys    map[string]bool // nil: every key
}

// Kind says what a Changed event reports.
type Kind uint8

const (
	// Inserted: the key had no value.
	Inserted Kind = iota + 1
	// Updated: the key's value was replaced by a different one.
	Updated
	// Removed: the key was removed, cleared or expired.
	Removed
)

func (k Kind) String() string {
	switch k {
	case Inserted:
		return "inserted"
	case Updated:
		return "updated"
	case Removed:
		return "removed"
	}
	return "unknown"
}

// Changed is published to listening sessions when a key changes.
//
//copycat:event
type Changed struct {
	Kind Kind
	Key  string
	// Old is the value before (nil for Inserted), New the value after (nil
	// for Removed).
	Old, New []byte
	// Expired is set on a Removed event caused by the key's time to live.
	Expired bool
}

// Entry is one key and its value, in an EntryPage.
type Entry struct {
	Key   string
	Value []byte
}

// KeyPage is one page of keys in key order.
type KeyPage struct {
	Keys []string
	// More says whether keys follow; the next page starts at Next.
	More bool
	Next string
}

// EntryPage is one page of entries in key order.
type EntryPage struct {
	Entries []Entry
	// More says whether entries follow; the next page starts at Next.
	More bool
	Next string
}

// ErrNegativeTTL is returned by writes given a negative time to live.
//
//copycat:error
var ErrNegativeTTL = errors.New("dmap: negative time to live")

// Init keeps the context. Timers need no rebuilding: replaying the live
// put commits schedules them again.
func (m *Map) Init(ctx runtime.Context) {
	m.ctx = ctx
	if m.entries == nil {
		m.entries = map[string]*entry{}
	}
	if m.listeners == nil {
		m.listeners = map[uint64]*listener{}
	}
}

// Get returns the key's value, or nil if it has none.
//
//copycat:query
func (m *Map) Get(key string) []byte {
	if e := m.entries[key]; e != nil {
		return e.value
	}
	return nil
}

// ContainsKey reports whether the key has a value.
//
//copycat:query
func (m *Map) ContainsKey(key string) bool {
	_, ok := m.entries[key]
	return ok
}

// Size returns the number of keys.
//
//copycat:query
func (m *Map) Size() int { return len(m.entries) }

// Keys returns up to limit keys (MaxPage if limit is not in 1..MaxPage)
// from the key from on, in key order.
//
//copycat:query
func (m *Map) Keys(from string, limit int) KeyPage {
	keys, more, next := m.page(from, limit)
	return KeyPage{Keys: keys, More: more, Next: next}
}

// Entries returns up to limit entries (MaxPage if limit is not in
// 1..MaxPage) from the key from on, in key order.
//
//copycat:query
func (m *Map) Entries(from string, limit int) EntryPage {
	keys, more, next := m.page(from, limit)
	p := EntryPage{Entries: make([]Entry, len(keys)), More: more, Next: next}
	for i, k := range keys {
		p.Entries[i] = Entry{Key: k, Value: m.entries[k].value}
	}
	return p
}

func (m *Map) page(from string, limit int) (keys []string, more bool, next string) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	for k := range m.entries {
		if k >= from {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > limit {
		return keys[:limit], true, keys[limit]
	}
	return keys, false, ""
}

// Put sets the key's value and returns the value it replaces (nil if
// none). A positive ttl removes the key once ttl has passed; zero keeps it.
//
//copycat:command
func (m *Map) Put(c runtime.Commit, key string, value []byte, ttl time.Duration) ([]byte, error) {
	if ttl < 0 {
		c.Release()
		return nil, ErrNegativeTTL
	}
	var old []byte
	if e := m.entries[key]; e != nil {
		old = e.value
	}
	m.set(c, key, value, ttl, false)
	return old, nil
}

// PutIfAbsent sets the key's value if it has none and reports whether it
// did.
//
//copycat:command
func (m *Map) PutIfAbsent(c runtime.Commit, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		c.Release()
		return false, ErrNegativeTTL
	}
	if _, ok := m.entries[key]; ok {
		c.Release()
		return false, nil
	}
	m.set(c, key, value, ttl, false) // the key is absent: nothing to keep
	return true, nil
}

// Replace sets the key's value if it has one and reports whether it did.
//
//copycat:command
func (m *Map) Replace(c runtime.Commit, key string, value []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		c.Release()
		return false, ErrNegativeTTL
	}
	if _, ok := m.entries[key]; !ok {
		c.Release()
		return false, nil
	}
	m.set(c, key, value, ttl, true)
	return true, nil
}

// CompareAndReplace sets the key's value to value if it holds expect, and
// reports whether it did.
//
//copycat:command
func (m *Map) CompareAndReplace(c runtime.Commit, key string, expect, value []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		c.Release()
		return false, ErrNegativeTTL
	}
	if e := m.entries[key]; e == nil || !bytes.Equal(e.value, expect) {
		c.Release()
		return false, nil
	}
	m.set(c, key, value, ttl, true)
	return true, nil
}

// Remove removes the key and returns its value (nil if it had none).
//
//copycat:command
func (m *Map) Remove(c runtime.Commit, key string) []byte {
	c.Release()
	e := m.entries[key]
	if e == nil {
		return nil
	}
	m.remove(key, e, false)
	return e.value
}

// RemoveIfEquals removes the key if it holds expect, and reports whether
// it did.
//
//copycat:command
func (m *Map) RemoveIfEquals(c runtime.Commit, key string, expect []byte) bool {
	c.Release()
	e := m.entries[key]
	if e == nil || !bytes.Equal(e.value, expect) {
		return false
	}
	m.remove(key, e, false)
	return true
}

// Clear removes every key, publishing a Removed event for each.
//
//copycat:command
func (m *Map) Clear(c runtime.Commit) {
	c.Release()
	for _, k := range slices.Sorted(maps.Keys(m.entries)) {
		m.remove(k, m.entries[k], false)
	}
}

// Listen makes the calling session receive Changed events for the given
// keys, or for every key if none are given, until Unlisten or the end of
// the session. It replaces the session's earlier filter.
//
//copycat:command
func (m *Map) Listen(c runtime.Commit, keys []string) {
	s := c.Session()
	if l := m.listeners[s.ID()]; l != nil {
		l.commit.Release()
	}
	l := &listener{session: s, commit: c}
	if len(keys) > 0 {
		l.keys = make(map[string]bool, len(keys))
		for _, k := range keys {
			l.keys[k] = true
		}
	}
	if m.listeners == nil {
		m.listeners = map[uint64]*listener{}
	}
	m.listeners[s.ID()] = l
}

// Unlisten stops Changed events to the calling session.
//
//copycat:command
func (m *Map) Unlisten(c runtime.Commit) {
	c.Release()
	m.unlisten(c.Session().ID())
}

// SessionOpened implements runtime.SessionListener.
func (m *Map) SessionOpened(runtime.Session) {}

// SessionClosed forgets a listener that ended.
func (m *Map) SessionClosed(s runtime.Session, _ bool) { m.unlisten(s.ID()) }

// Delete stops the expiry timers.
func (m *Map) Delete() {
	for _, e := range m.entries {
		if e.timer != nil {
			e.timer.Cancel()
		}
	}
}

func (m *Map) unlisten(id uint64) {
	if l := m.listeners[id]; l != nil {
		l.commit.Release()
		delete(m.listeners, id)
	}
}

// set stores the value written by commit c. A conditional write (one that
// needed the key's current state to succeed) keeps the commits the old value
// depends on, which a replay needs to satisfy its condition again; an
// unconditional one releases them.
func (m *Map) set(c runtime.Commit, key string, value []byte, ttl time.Duration, conditional bool) {
	old := m.entries[key]
	var commits []runtime.Commit
	if old != nil {
		if conditional {
			commits = old.commits
		} else {
			releaseAll(old.commits)
		}
		if old.timer != nil {
			old.timer.Cancel()
		}
	}
	e := &entry{value: value, commits: append(commits, c)}
	if m.entries == nil {
		m.entries = map[string]*entry{}
	}
	m.entries[key] = e
	if ttl > 0 {
		e.deadline = c.Time().Add(ttl)
		e.timer = m.ctx.Schedule(max(e.deadline.Sub(m.ctx.Now()), 0), func() { m.expire(key, e) })
	}
	switch {
	case old == nil:
		m.publish(Changed{Kind: Inserted, Key: key, New: value})
	case !bytes.Equal(old.value, value):
		m.publish(Changed{Kind: Updated, Key: key, Old: old.value, New: value})
	}
}

func (m *Map) expire(key string, e *entry) {
	if m.entries[key] != e {
		return // superseded after the timer was armed
	}
	e.timer = nil
	m.remove(key, e, true)
}

// remove drops the key's entry e and releases the commits that held it.
func (m *Map) remove(key string, e *entry, expired bool) {
	delete(m.entries, key)
	releaseAll(e.commits)
	if e.timer != nil {
		e.timer.Cancel()
	}
	m.publish(Changed{Kind: Removed, Key: key, Old: e.value, Expired: expired})
}

func (m *Map) publish(ev Changed) {
	if len(m.listeners) == 0 {
		return
	}
	// Sorted: every member queues the same events in the same order.
	for _, id := range slices.Sorted(maps.Keys(m.listeners)) {
		if l := m.listeners[id]; l.keys == nil || l.keys[ev.Key] {
			l.session.Publish(ev)
		}
	}
}

func releaseAll(commits []runtime.Commit) {
	for _, c := range commits {
		c.Release()
	}
}
