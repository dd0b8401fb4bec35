package raft

import (
	"fmt"
	"sync"
)

// MemoryStorage is a Storage held in memory, for tests and simulations. It
// also offers the writes a driver makes after Ready: Append, SetHardState,
// ApplySnapshot and Compact. It is safe for concurrent use.
type MemoryStorage struct {
	mu   sync.Mutex
	hard HardState
	snap Snapshot
	// ents[0] is a dummy entry standing for the compaction point, so that
	// Term(snap.Index) works; ents[i] has index snap.Index+i.
	ents []Entry
}

// NewMemoryStorage returns an empty storage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{ents: make([]Entry, 1)}
}

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (HardState, SnapshotMeta, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hard, cloneMeta(ms.snap.Meta), nil
}

// SetHardState saves the hard state.
func (ms *MemoryStorage) SetHardState(st HardState) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.hard = st
	return nil
}

func (ms *MemoryStorage) firstIndex() uint64 { return ms.ents[0].Index + 1 }
func (ms *MemoryStorage) lastIndex() uint64  { return ms.ents[0].Index + uint64(len(ms.ents)) - 1 }

// Entries implements Storage.
func (ms *MemoryStorage) Entries(lo, hi, maxSize uint64) ([]Entry, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if lo <= offset {
		return nil, ErrCompacted
	}
	if hi > ms.lastIndex()+1 {
		return nil, fmt.Errorf("raft: memory storage: entries [%d, %d) beyond last index %d: %w", lo, hi, ms.lastIndex(), ErrUnavailable)
	}
	ents := limitSize(ms.ents[lo-offset:hi-offset], maxSize)
	return append([]Entry(nil), ents...), nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if i < offset {
		return 0, ErrCompacted
	}
	if i-offset >= uint64(len(ms.ents)) {
		return 0, ErrUnavailable
	}
	return ms.ents[i-offset].Term, nil
}

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.firstIndex(), nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastIndex(), nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s := ms.snap
	s.Meta = cloneMeta(s.Meta)
	return s, nil
}

// ApplySnapshot replaces the whole log with the snapshot's compaction point.
func (ms *MemoryStorage) ApplySnapshot(s Snapshot) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if s.Meta.Index <= ms.snap.Meta.Index && !ms.snap.Meta.IsEmpty() {
		return fmt.Errorf("raft: memory storage: snapshot at %d is not newer than %d", s.Meta.Index, ms.snap.Meta.Index)
	}
	ms.snap = s
	ms.snap.Meta = cloneMeta(s.Meta)
	ms.ents = []Entry{{Term: s.Meta.Term, Index: s.Meta.Index}}
	return nil
}

// Compact discards entries at or below index, recording a compaction point
// with the given configuration and state. index must be at or below the last
// index and above the current compaction point.
func (ms *MemoryStorage) Compact(index uint64, conf Configuration, data []byte) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if index <= offset {
		return ErrCompacted
	}
	if index > ms.lastIndex() {
		return fmt.Errorf("raft: memory storage: compact %d beyond last index %d", index, ms.lastIndex())
	}
	i := index - offset
	term := ms.ents[i].Term
	ents := make([]Entry, 1, uint64(len(ms.ents))-i)
	ents[0] = Entry{Index: index, Term: term}
	ms.ents = append(ents, ms.ents[i+1:]...)
	ms.snap = Snapshot{Meta: SnapshotMeta{Index: index, Term: term, Config: conf.Clone()}, Data: data}
	return nil
}

// Append adds entries, replacing any conflicting suffix. Entries must be
// contiguous and start at or below lastIndex+1.
func (ms *MemoryStorage) Append(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	first := ms.firstIndex()
	last := entries[0].Index + uint64(len(entries)) - 1
	if last < first {
		return nil // entirely compacted already
	}
	if first > entries[0].Index {
		entries = entries[first-entries[0].Index:]
	}
	offset := entries[0].Index - ms.ents[0].Index
	switch {
	case uint64(len(ms.ents)) > offset:
		ms.ents = append(ms.ents[:offset:offset], entries...)
	case uint64(len(ms.ents)) == offset:
		ms.ents = append(ms.ents, entries...)
	default:
		return fmt.Errorf("raft: memory storage: append at %d leaves a gap after %d", entries[0].Index, ms.lastIndex())
	}
	return nil
}

func cloneMeta(m SnapshotMeta) SnapshotMeta {
	m.Config = m.Config.Clone()
	return m
}

// limitSize returns the longest prefix of ents whose total size stays within
// maxSize, but always at least one entry.
func limitSize(ents []Entry, maxSize uint64) []Entry {
	if len(ents) == 0 {
		return ents
	}
	size := ents[0].size()
	for i := 1; i < len(ents); i++ {
		size += ents[i].size()
		if size > maxSize {
			return ents[:i]
		}
	}
	return ents
}
