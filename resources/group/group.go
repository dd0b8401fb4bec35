package group

//go:generate go run ../../cmd/copycatgen

import (
	"cmp"
	"errors"
	"maps"
	"slices"

	"github.com/copycat-go/copycat/runtime"
)

// ErrMemberExists is returned by Join when another session's member holds
// the ID.
//
//copycat:error
var ErrMemberExists = errors.New("group: member ID held by another session")

// ErrNotMember is returned by Leave when the ID names no member of the
// calling session.
//
//copycat:error
var ErrNotMember = errors.New("group: not a member of this session")

// Kind says what a Changed event reports.
type Kind uint8

const (
	// Joined: a member joined.
	Joined Kind = iota + 1
	// Updated: a member joined again from its session with new metadata.
	Updated
	// Left: a member left, or its session closed or expired.
	Left
)

func (k Kind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Updated:
		return "updated"
	case Left:
		return "left"
	}
	return "unknown"
}

// Member is one member of the group: its ID, the session it lives with,
// its metadata, and Index, the log index of the Join that set its current
// metadata (members are listed in that order). Index is taken from the
// current Join so that replaying the live Joins rebuilds it exactly.
type Member struct {
	ID       string
	Session  uint64
	Metadata []byte
	Index    uint64
}

// Changed is published to listening sessions when a member joins, updates
// its metadata or leaves. Expired is set on a Left event caused by the
// expiry of the member's session (Closed: by its close).
//
//copycat:event
type Changed struct {
	Kind    Kind
	Member  Member
	Expired bool
	Closed  bool
}

// Group is the state machine of a group membership: members are ephemeral,
// bound to the session that joined them, and leave when it ends. Its state
// is the Join commits of current members and the Listen commits of
// listening sessions; every other commit is released at once.
//
//copycat:resource name=copycat.group compaction=release
type Group struct {
	members   map[string]*member
	listeners map[uint64]runtime.Commit // Listen commits by session ID
}

// member is a current member and the Join commit that holds it.
type member struct {
	commit   runtime.Commit
	metadata []byte
}

// Join adds a member with the given ID and metadata, living as long as the
// calling session. Joining again from the same session replaces the
// metadata (an Updated event); an ID held by another session is refused
// with ErrMemberExists.
//
//copycat:command
func (g *Group) Join(c runtime.Commit, memberID string, metadata []byte) (Member, error) {
	old := g.members[memberID]
	if old != nil && old.commit.Session().ID() != c.Session().ID() {
		c.Release()
		return Member{}, ErrMemberExists
	}
	m := &member{commit: c, metadata: metadata}
	kind := Joined
	if old != nil {
		old.commit.Release()
		kind = Updated
	}
	if g.members == nil {
		g.members = map[string]*member{}
	}
	g.members[memberID] = m
	info := m.info(memberID)
	g.publish(Changed{Kind: kind, Member: info})
	return info, nil
}

// Leave removes the calling session's member with the given ID.
//
//copycat:command
func (g *Group) Leave(c runtime.Commit, memberID string) error {
	defer c.Release()
	m := g.members[memberID]
	if m == nil || m.commit.Session().ID() != c.Session().ID() {
		return ErrNotMember
	}
	g.remove(memberID, m, Changed{Kind: Left})
	return nil
}

// Members lists the current members in the order of their Index.
//
//copycat:query
func (g *Group) Members() []Member {
	out := make([]Member, 0, len(g.members))
	for id, m := range g.members {
		out = append(out, m.info(id))
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// Listen makes the calling session receive a Changed event for every join,
// update and leave, until Unlisten or the end of the session.
//
//copycat:command
func (g *Group) Listen(c runtime.Commit) {
	id := c.Session().ID()
	if old := g.listeners[id]; old != nil {
		old.Release()
	}
	if g.listeners == nil {
		g.listeners = map[uint64]runtime.Commit{}
	}
	g.listeners[id] = c
}

// Unlisten stops Changed events to the calling session.
//
//copycat:command
func (g *Group) Unlisten(c runtime.Commit) {
	c.Release()
	g.unlisten(c.Session().ID())
}

// SessionOpened is half of runtime.SessionListener; opening changes nothing.
func (g *Group) SessionOpened(runtime.Session) {}

// SessionClosed removes the members of a closed or expired session, in
// Index order, telling the listeners that remain.
func (g *Group) SessionClosed(s runtime.Session, expired bool) {
	g.unlisten(s.ID())
	for _, m := range g.Members() {
		if m.Session == s.ID() {
			g.remove(m.ID, g.members[m.ID], Changed{Kind: Left, Expired: expired, Closed: !expired})
		}
	}
}

// Delete releases every commit the instance holds.
func (g *Group) Delete() {
	for id, m := range g.members {
		m.commit.Release()
		delete(g.members, id)
	}
	for id := range g.listeners {
		g.unlisten(id)
	}
}

func (m *member) info(id string) Member {
	return Member{ID: id, Session: m.commit.Session().ID(), Metadata: m.metadata, Index: m.commit.Index()}
}

// remove drops a member, releases its Join and publishes ev for it.
func (g *Group) remove(id string, m *member, ev Changed) {
	ev.Member = m.info(id)
	delete(g.members, id)
	m.commit.Release()
	g.publish(ev)
}

func (g *Group) unlisten(id uint64) {
	if l := g.listeners[id]; l != nil {
		l.Release()
		delete(g.listeners, id)
	}
}

// publish sends ev to the listening sessions in session ID order, so every
// member queues the same events.
func (g *Group) publish(ev Changed) {
	for _, id := range slices.Sorted(maps.Keys(g.listeners)) {
		g.listeners[id].Session().Publish(ev)
	}
}
