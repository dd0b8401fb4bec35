package session

import (
	"maps"
	"slices"
)

// Table holds the sessions of one state machine.
type Table struct {
	sessions map[uint64]*Session
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{sessions: map[uint64]*Session{}} }

// Add registers an open session.
func (t *Table) Add(s *Session) { t.sessions[s.ID] = s }

// Get returns the session with the given ID, open or not yet forgotten.
func (t *Table) Get(id uint64) (*Session, bool) {
	s, ok := t.sessions[id]
	return s, ok
}

// Remove forgets a closed session.
func (t *Table) Remove(id uint64) { delete(t.sessions, id) }

// IDs returns the IDs of all sessions in order, for deterministic iteration.
func (t *Table) IDs() []uint64 {
	return slices.Sorted(maps.Keys(t.sessions))
}

// Len returns the number of sessions.
func (t *Table) Len() int { return len(t.sessions) }
