package log

import (
	"fmt"
	"sync"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Memory is a Store held in memory, for tests and simulations: a thin layer
// over raft.MemoryStorage that gives it the Store semantics of Log. It is
// safe for concurrent use.
type Memory struct {
	// mu serializes the writes, which take several MemoryStorage calls, and
	// guards closed.
	mu     sync.RWMutex
	ms     *raft.MemoryStorage
	closed bool
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{ms: raft.NewMemoryStorage()} }

// Save implements Store.
func (m *Memory) Save(hs raft.HardState, ents []raft.Entry) error {
	if err := checkBatch(ents); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if len(ents) > 0 {
		// MemoryStorage checks neither the term order nor the gap before
		// dropping a conflicting suffix; Log does.
		first, _ := m.ms.FirstIndex()
		last, _ := m.ms.LastIndex()
		if n := uint64(len(ents)); ents[0].Index < first {
			ents = ents[min(first-ents[0].Index, n):]
		}
		if len(ents) > 0 && ents[0].Index <= last+1 {
			if t, err := m.ms.Term(ents[0].Index - 1); err == nil && ents[0].Term < t {
				return fmt.Errorf("log: save: entry %d has term %d below the previous %d", ents[0].Index, ents[0].Term, t)
			}
		}
	}
	if err := m.ms.Append(ents); err != nil {
		return fmt.Errorf("log: save: %w", err)
	}
	if !hs.IsEmpty() {
		return m.ms.SetHardState(hs)
	}
	return nil
}

// SetCompaction implements Store.
func (m *Memory) SetCompaction(meta raft.SnapshotMeta) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	first, _ := m.ms.FirstIndex()
	if meta.Index < first {
		return fmt.Errorf("log: compaction at %d is not above the current %d: %w", meta.Index, first-1, raft.ErrCompacted)
	}
	if last, _ := m.ms.LastIndex(); meta.Index <= last {
		if t, err := m.ms.Term(meta.Index); err == nil && t == meta.Term {
			return m.ms.Compact(meta.Index, meta.Config, nil)
		}
	}
	return m.ms.ApplySnapshot(raft.Snapshot{Meta: meta})
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	return nil
}

func (m *Memory) check() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// InitialState implements raft.Storage.
func (m *Memory) InitialState() (raft.HardState, raft.SnapshotMeta, error) {
	if err := m.check(); err != nil {
		return raft.HardState{}, raft.SnapshotMeta{}, err
	}
	return m.ms.InitialState()
}

// Entries implements raft.Storage.
func (m *Memory) Entries(lo, hi, maxSize uint64) ([]raft.Entry, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	if lo > hi {
		return nil, fmt.Errorf("log: entries [%d, %d): inverted range", lo, hi)
	}
	return m.ms.Entries(lo, hi, maxSize)
}

// Term implements raft.Storage.
func (m *Memory) Term(i uint64) (uint64, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	return m.ms.Term(i)
}

// FirstIndex implements raft.Storage.
func (m *Memory) FirstIndex() (uint64, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	return m.ms.FirstIndex()
}

// LastIndex implements raft.Storage.
func (m *Memory) LastIndex() (uint64, error) {
	if err := m.check(); err != nil {
		return 0, err
	}
	return m.ms.LastIndex()
}

// Snapshot implements raft.Storage.
func (m *Memory) Snapshot() (raft.Snapshot, error) {
	if err := m.check(); err != nil {
		return raft.Snapshot{}, err
	}
	return m.ms.Snapshot()
}
