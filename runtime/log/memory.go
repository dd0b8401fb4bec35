package log

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Memory is a Store held in memory, for tests and simulations: a thin layer
// over raft.MemoryStorage that gives it the Store semantics of Log. It is
// safe for concurrent use. Its Clean drops every dead entry.
type Memory struct {
	// maint serializes Compact, SetCompaction, Install and Clean, like
	// Log's, so that Clean can ask live without holding mu.
	maint sync.Mutex
	// mu serializes the writes, which take several MemoryStorage calls, and
	// guards closed and kept.
	mu     sync.RWMutex
	ms     *raft.MemoryStorage
	kept   []raft.Entry // entries at or below the compaction point, for Compacted
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
//
// Deprecated: use Compact and Install (see Store).
func (m *Memory) SetCompaction(meta raft.SnapshotMeta) error {
	m.maint.Lock()
	defer m.maint.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	first, _ := m.ms.FirstIndex()
	if meta.Index < first {
		return fmt.Errorf("log: compaction at %d is not above the current %d: %w", meta.Index, first-1, raft.ErrCompacted)
	}
	m.kept = nil
	if last, _ := m.ms.LastIndex(); meta.Index <= last {
		if t, err := m.ms.Term(meta.Index); err == nil && t == meta.Term {
			return m.ms.Compact(meta.Index, meta.Config, nil)
		}
	}
	return m.ms.ApplySnapshot(raft.Snapshot{Meta: meta})
}

// Compact implements Store.
func (m *Memory) Compact(snap raft.Snapshot) error {
	m.maint.Lock()
	defer m.maint.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	c := snap.Meta.Index
	first, _ := m.ms.FirstIndex()
	last, _ := m.ms.LastIndex()
	switch {
	case c < first:
		return fmt.Errorf("log: compact at %d: not above the current compaction point %d: %w", c, first-1, raft.ErrCompacted)
	case c > last:
		return fmt.Errorf("log: compact at %d: beyond the last entry %d: %w", c, last, raft.ErrUnavailable)
	}
	if t, _ := m.ms.Term(c); t != snap.Meta.Term {
		return fmt.Errorf("log: compact at %d: the entry there has term %d, not %d", c, t, snap.Meta.Term)
	}
	ents, err := m.ms.Entries(first, c+1, ^uint64(0))
	if err != nil {
		return fmt.Errorf("log: compact at %d: %w", c, err)
	}
	data := snap.Data
	if len(data) == 0 {
		data = nil
	}
	if err := m.ms.Compact(c, snap.Meta.Config, data); err != nil {
		return fmt.Errorf("log: compact at %d: %w", c, err)
	}
	m.kept = append(m.kept, ents...)
	return nil
}

// Install implements Store. It holds the whole stream in memory.
func (m *Memory) Install(snap raft.Snapshot, next func() (e raft.Entry, ok bool, err error)) error {
	m.maint.Lock()
	defer m.maint.Unlock()
	m.mu.RLock()
	closed := m.closed
	first, _ := m.ms.FirstIndex()
	m.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if snap.Meta.Index < first {
		return fmt.Errorf("log: install at %d: not above the current compaction point %d: %w", snap.Meta.Index, first-1, raft.ErrCompacted)
	}
	check := installCheck{meta: snap.Meta}
	var kept []raft.Entry
	for {
		e, ok, err := next()
		if err != nil {
			return fmt.Errorf("log: install at %d: reading the entries: %w", snap.Meta.Index, err)
		}
		if !ok {
			break
		}
		if err := check.next(e); err != nil {
			return err
		}
		kept = append(kept, e)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if len(snap.Data) == 0 {
		snap.Data = nil
	}
	if err := m.ms.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("log: install at %d: %w", snap.Meta.Index, err)
	}
	m.kept = kept
	return nil
}

// Compacted implements Store. fn runs on a copy, with no lock held.
func (m *Memory) Compacted(fn func(raft.Entry) error) error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	kept := slices.Clone(m.kept)
	m.mu.RUnlock()
	for _, e := range kept {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Clean implements Store: it drops every entry live reports dead. Its
// CleanStats count entries, and bytes of Data for BytesBefore and
// BytesAfter; there are no segments.
func (m *Memory) Clean(point uint64, live func(index uint64) bool) (CleanStats, error) {
	start := time.Now()
	m.maint.Lock() // kept changes only under maint: live is asked without mu
	defer m.maint.Unlock()
	m.mu.RLock()
	closed := m.closed
	kept := m.kept
	m.mu.RUnlock()
	if closed {
		return CleanStats{}, ErrClosed
	}
	if snap, err := m.ms.Snapshot(); err != nil || snap.Meta.Index != point {
		return CleanStats{}, err // live describes another compaction point
	}
	var st CleanStats
	alive := make([]raft.Entry, 0, len(kept))
	for _, e := range kept {
		if live(e.Index) {
			alive = append(alive, e)
		}
	}
	m.mu.Lock()
	t := time.Now()
	m.kept = alive
	st.held(time.Since(t))
	m.mu.Unlock()
	st.EntriesKept = int64(len(alive))
	st.EntriesDropped = int64(len(kept) - len(alive))
	for _, e := range kept {
		st.BytesBefore += int64(len(e.Data))
	}
	for _, e := range alive {
		st.BytesAfter += int64(len(e.Data))
	}
	st.Duration = time.Since(start)
	return st, nil
}

// Usage implements Store. Bytes counts the entries' Data and the image.
func (m *Memory) Usage(live func(index uint64) bool) (Usage, error) {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return Usage{}, ErrClosed
	}
	kept := slices.Clone(m.kept)
	snap, _ := m.ms.Snapshot()
	first, _ := m.ms.FirstIndex()
	last, _ := m.ms.LastIndex()
	ents, err := m.ms.Entries(first, last+1, ^uint64(0))
	m.mu.RUnlock()
	if err != nil {
		return Usage{}, fmt.Errorf("log: usage: %w", err)
	}
	u := Usage{
		CompactionIndex: snap.Meta.Index, CompactionTerm: snap.Meta.Term, KeptFrom: snap.Meta.Index + 1,
		FirstIndex: first, LastIndex: last, ImageBytes: int64(len(snap.Data)), LiveCounted: live != nil,
	}
	if len(kept) > 0 {
		u.KeptFrom = kept[0].Index
	}
	for _, e := range kept {
		u.Entries++
		u.Bytes += int64(len(e.Data))
		if live != nil && live(e.Index) {
			u.Live++
		}
	}
	for _, e := range ents {
		u.Entries++
		u.Bytes += int64(len(e.Data))
	}
	if live != nil {
		u.Live += int64(len(ents))
	}
	u.Bytes += u.ImageBytes
	return u, nil
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
