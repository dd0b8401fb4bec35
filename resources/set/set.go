// Package set is a replicated set of strings with times to live, change
// events and bounded pages for listing: Copycat's distributed set.
//
// Register SetType with the members and open an instance by name:
//
//	srv, err := server.New(cfg, set.SetType)
//	...
//	s, err := set.OpenSet(ctx, cli, "online")
//	added, err := s.Add(ctx, "ada", 0)               // no expiry
//	added, err = s.Add(ctx, "bob", 30*time.Second)   // gone after 30s of log time
//	ok, err := s.Contains(ctx, "ada")
//	page, err := s.Members(ctx, "", 100)             // first 100, in order
//	page, err = s.Members(ctx, page.Next, 100)       // while page.More
//	stop, err := s.Watch(ctx, func(e set.Changed) { ... })
//
// # Expiry
//
// An Add with a positive ttl removes the member once ttl has passed on the
// state machine's clock (the leader's timestamps on the log): at the same
// point of the log on every member. The removal is published as a Changed
// event of kind Removed with Expired set. Adding a member that is already
// there reports false and publishes nothing, but replaces its time to live:
// ttl 0 makes it permanent again.
//
// # Events
//
// A session receives Changed events after it calls Listen, until Unlisten or
// its end. Watch does the Listen and the local OnChanged in one call.
//
// # Compaction
//
// The set is a release-mode resource: its state is the Add commits that hold
// its members (and the Listen commits of listening sessions). An Add that is
// superseded, removed, cleared or expires is released, as is every command
// that holds nothing once applied, so the log keeps about one entry per
// member, whatever the history.
package set

//go:generate go run ../../cmd/copycatgen

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// MaxPage is the most members one Members call returns.
const MaxPage = 1000

// Set is a replicated set of strings.
//
//copycat:resource name=copycat.set compaction=release
type Set struct {
	ctx       runtime.Context
	members   map[string]*member
	listeners map[uint64]*listener
}

// member is the Add commit that holds a member, and its expiry.
type member struct {
	commit runtime.Commit
	timer  runtime.Timer
}

// listener is a listening session and the Listen commit that registered it.
type listener struct {
	session runtime.Session
	commit  runtime.Commit
}

// Kind says what a Changed event reports.
type Kind uint8

const (
	// Added: the member joined the set.
	Added Kind = iota + 1
	// Removed: the member was removed, cleared or expired.
	Removed
)

func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return "unknown"
}

// Changed is published to listening sessions when a member joins or leaves.
//
//copycat:event
type Changed struct {
	Kind   Kind
	Member string
	// Expired is set on a Removed event caused by the member's time to live.
	Expired bool
}

// Page is one page of members in order.
type Page struct {
	Members []string
	// More says whether members follow; the next page starts at Next.
	More bool
	Next string
}

// ErrNegativeTTL is returned by Add given a negative time to live.
//
//copycat:error
var ErrNegativeTTL = errors.New("set: negative time to live")

// Init keeps the context. Timers need no rebuilding: replaying the live Add
// commits schedules them again.
func (s *Set) Init(ctx runtime.Context) {
	s.ctx = ctx
	if s.members == nil {
		s.members = map[string]*member{}
	}
	if s.listeners == nil {
		s.listeners = map[uint64]*listener{}
	}
}

// Add adds value to the set and reports whether it was not there. A
// positive ttl removes it once ttl has passed; zero keeps it. Adding a
// present member replaces its time to live.
//
//copycat:command
func (s *Set) Add(c runtime.Commit, value string, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		c.Release()
		return false, ErrNegativeTTL
	}
	old := s.members[value]
	if old != nil {
		old.commit.Release()
		if old.timer != nil {
			old.timer.Cancel()
		}
	}
	m := &member{commit: c}
	if s.members == nil {
		s.members = map[string]*member{}
	}
	s.members[value] = m
	if ttl > 0 {
		deadline := c.Time().Add(ttl)
		m.timer = s.ctx.Schedule(max(deadline.Sub(s.ctx.Now()), 0), func() { s.expire(value, m) })
	}
	if old != nil {
		return false, nil
	}
	s.publish(Changed{Kind: Added, Member: value})
	return true, nil
}

// Remove removes value from the set and reports whether it was there.
//
//copycat:command
func (s *Set) Remove(c runtime.Commit, value string) bool {
	c.Release()
	m := s.members[value]
	if m == nil {
		return false
	}
	s.remove(value, m, false)
	return true
}

// Clear removes every member, publishing a Removed event for each.
//
//copycat:command
func (s *Set) Clear(c runtime.Commit) {
	c.Release()
	for _, v := range slices.Sorted(maps.Keys(s.members)) {
		s.remove(v, s.members[v], false)
	}
}

// Contains reports whether value is in the set.
//
//copycat:query
func (s *Set) Contains(value string) bool {
	_, ok := s.members[value]
	return ok
}

// Size returns the number of members.
//
//copycat:query
func (s *Set) Size() int { return len(s.members) }

// Members returns up to limit members (MaxPage if limit is not in
// 1..MaxPage) from the member from on, in order.
//
//copycat:query
func (s *Set) Members(from string, limit int) Page {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	var out []string
	for v := range s.members {
		if v >= from {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		return Page{Members: out[:limit], More: true, Next: out[limit]}
	}
	return Page{Members: out}
}

// Listen makes the calling session receive Changed events until Unlisten
// or the end of the session.
//
//copycat:command
func (s *Set) Listen(c runtime.Commit) {
	id := c.Session().ID()
	if l := s.listeners[id]; l != nil {
		l.commit.Release()
	}
	if s.listeners == nil {
		s.listeners = map[uint64]*listener{}
	}
	s.listeners[id] = &listener{session: c.Session(), commit: c}
}

// Unlisten stops Changed events to the calling session.
//
//copycat:command
func (s *Set) Unlisten(c runtime.Commit) {
	c.Release()
	s.unlisten(c.Session().ID())
}

// SessionOpened implements runtime.SessionListener.
func (s *Set) SessionOpened(runtime.Session) {}

// SessionClosed forgets a listener that ended.
func (s *Set) SessionClosed(sess runtime.Session, _ bool) { s.unlisten(sess.ID()) }

// Delete stops the expiry timers.
func (s *Set) Delete() {
	for _, m := range s.members {
		if m.timer != nil {
			m.timer.Cancel()
		}
	}
}

func (s *Set) unlisten(id uint64) {
	if l := s.listeners[id]; l != nil {
		l.commit.Release()
		delete(s.listeners, id)
	}
}

func (s *Set) expire(value string, m *member) {
	if s.members[value] != m {
		return // superseded after the timer was armed
	}
	m.timer = nil
	s.remove(value, m, true)
}

// remove drops member m and releases the Add that held it.
func (s *Set) remove(value string, m *member, expired bool) {
	delete(s.members, value)
	m.commit.Release()
	if m.timer != nil {
		m.timer.Cancel()
	}
	s.publish(Changed{Kind: Removed, Member: value, Expired: expired})
}

func (s *Set) publish(ev Changed) {
	// Sorted: every member queues the same events in the same order.
	for _, id := range slices.Sorted(maps.Keys(s.listeners)) {
		s.listeners[id].session.Publish(ev)
	}
}
