package log

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// headWithBatches opens a log with one segment and writes the batches
// [1,4), [4,7), [7,10) to its head, then abandons it as a killed process
// would. It returns the options and the entries.
func headWithBatches(t *testing.T) (Options, []raft.Entry) {
	t.Helper()
	o, l := openOneSegment(t)
	var all []raft.Entry
	for lo := uint64(1); lo < 10; lo += 3 {
		ents := mkEnts(lo, lo+3, 1)
		require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
		all = append(all, ents...)
	}
	l.crash()
	require.Equal(t, []uint64{1}, segmentFiles(t, o.Dir))
	return o, all
}

// openOneSegment opens a new log whose segments are large enough for a
// test's entries to stay in its head.
func openOneSegment(t *testing.T) (Options, *Log) {
	t.Helper()
	o := testOptions(t.TempDir())
	o.SegmentSize = 64 << 20
	return o, openLog(t, o)
}

// journalRecords returns the offsets of the journal's records after the
// header.
func journalRecords(t *testing.T, b []byte) []int {
	t.Helper()
	_, off, ok := readRecord(b)
	require.True(t, ok)
	var offs []int
	for {
		_, n, ok := readRecord(b[off:])
		if !ok || n == journalRecordHeader {
			return offs
		}
		offs = append(offs, off)
		off += n
	}
}

// TestOpenRebuildsHeadFromJournal checks that Open never trusts the head's
// bolt file, which is written without syncs: whether it is missing, empty,
// garbage or behind, the head comes back from the journal with every entry
// a Save returned for.
func TestOpenRebuildsHeadFromJournal(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"intact", func(t *testing.T, path string) {}},
		{"missing", func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) }},
		{"empty", func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 0)) }},
		{"garbage", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("not a bolt file at all"), 0o600))
		}},
		{"behind", func(t *testing.T, path string) { // a fresh segment file: the entries never reached it
			dir := t.TempDir()
			fo := testOptions(dir)
			s, err := createHead(dir, 1, fo.EnsureDefaults(), nil)
			require.NoError(t, err)
			require.NoError(t, s.close())
			b, err := os.ReadFile(segPath(dir, 1))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, b, 0o600))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, all := headWithBatches(t)
			tt.damage(t, segPath(o.Dir, 1))
			l := openLog(t, o)
			assert.Equal(t, all, viewOf(t, l).Entries)
			more := mkEnts(10, 12, 2)
			require.NoError(t, l.Save(raft.HardState{Term: 2}, more))
			l = reopen(t, l)
			assert.Equal(t, append(all, more...), viewOf(t, l).Entries)
		})
	}
}

// TestJournalTornTail checks that a last record a crash cut short (its Save
// never returned) is dropped, whatever part of it reached the disk, and
// that the log goes on from there.
func TestJournalTornTail(t *testing.T) {
	for _, tt := range []struct {
		name string
		tear func(b []byte, last, end int)
	}{
		{"payload cut", func(b []byte, last, end int) { clear(b[end-5 : end]) }},
		{"payload garbled", func(b []byte, last, end int) { b[end-1] ^= 0xff }},
		{"only the header written", func(b []byte, last, end int) { clear(b[last+journalRecordHeader : end]) }},
		{"length garbled", func(b []byte, last, end int) { binary.BigEndian.PutUint32(b[last:], 1<<30) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, all := headWithBatches(t)
			path := filepath.Join(o.Dir, journalName(1))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			offs := journalRecords(t, b)
			require.Len(t, offs, 3)
			last := offs[2]
			end := last + journalRecordHeader + int(binary.BigEndian.Uint32(b[last:]))
			tt.tear(b, last, end)
			require.NoError(t, os.WriteFile(path, b, 0o600))

			l := openLog(t, o)
			assert.Equal(t, all[:6], viewOf(t, l).Entries, "the torn batch is dropped, the others kept")
			more := mkEnts(7, 9, 2)
			require.NoError(t, l.Save(raft.HardState{Term: 2}, more))
			l = reopen(t, l)
			assert.Equal(t, append(all[:6:6], more...), viewOf(t, l).Entries)
		})
	}
}

// TestJournalDamagedRecord checks that a damaged record with records after
// it — not a torn write, which can only be the last — is refused by name
// instead of silently dropping the acknowledged entries after it.
func TestJournalDamagedRecord(t *testing.T) {
	o, _ := headWithBatches(t)
	path := filepath.Join(o.Dir, journalName(1))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	offs := journalRecords(t, b)
	b[offs[1]+journalRecordHeader+3] ^= 1
	require.NoError(t, os.WriteFile(path, b, 0o600))
	_, err = Open(o)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), path)
}

// TestJournalTruncation checks that a batch overwriting the head's suffix
// (a new leader's entries) is replayed as the truncation it was.
func TestJournalTruncation(t *testing.T) {
	o, all := headWithBatches(t)
	l := openLog(t, o)
	over := mkEnts(5, 7, 3)
	require.NoError(t, l.Save(raft.HardState{Term: 3}, over))
	want := append(all[:4:4], over...)
	assert.Equal(t, want, viewOf(t, l).Entries)
	l.crash()
	l = openLog(t, o)
	assert.Equal(t, want, viewOf(t, l).Entries)
}

// TestJournalKeepsNilData checks that entries come back from the journal as
// saved: nil and empty data alike.
func TestJournalKeepsNilData(t *testing.T) {
	o, l := openOneSegment(t)
	ents := []raft.Entry{
		{Index: 1, Term: 1, Type: raft.EntryNoOp},
		{Index: 2, Term: 1, Type: raft.EntryNormal, Timestamp: -5, Data: []byte{}},
		{Index: 3, Term: 1, Type: raft.EntryConfig, Timestamp: 1 << 62, Data: []byte("c")},
	}
	require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
	l.crash()
	l = openLog(t, o)
	assert.Equal(t, ents, viewOf(t, l).Entries)
}

// TestJournalGrowsInChunks checks that appends past the preallocated part
// grow the file in zeroed chunks, that a batch larger than a chunk fits,
// and that everything reads back.
func TestJournalGrowsInChunks(t *testing.T) {
	o, l := openOneSegment(t)
	var all []raft.Entry
	for lo := uint64(1); lo < 400; lo += 40 {
		ents := mkEnts(lo, lo+40, 1)
		for k := range ents {
			ents[k].Data = make([]byte, 1000+k)
		}
		require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
		all = append(all, ents...)
	}
	big := []raft.Entry{{Index: 401, Term: 1, Data: make([]byte, 3*maxJournalChunk)}}
	require.NoError(t, l.Save(raft.HardState{Term: 1}, big))
	all = append(all, big...)
	st, err := os.Stat(filepath.Join(o.Dir, journalName(1)))
	require.NoError(t, err)
	hdr := int64(len(appendRecord(nil, journalHeader(1, l.stable.id))))
	assert.Zero(t, (st.Size()-hdr)%journalChunk(o.SegmentSize), "grown in whole chunks")
	assert.Greater(t, st.Size(), int64(3*maxJournalChunk))
	l.crash()
	l = openLog(t, o)
	assert.Equal(t, all, viewOf(t, l).Entries)
}

// TestSealRemovesJournal checks that a sealed segment keeps no journal and
// that a journal a crash left behind the head is removed at Open, not
// replayed over the sealed segment.
func TestSealRemovesJournal(t *testing.T) {
	l, all := fiveSegments(t)
	journals, err := filepath.Glob(filepath.Join(l.opts.Dir, "*"+journalSuffix))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(l.opts.Dir, journalName(21))}, journals, "only the head has a journal")

	// A stale journal of segment 11 (a seal whose removal a crash lost).
	l.crash()
	stale := filepath.Join(l.opts.Dir, journalName(11))
	require.NoError(t, os.WriteFile(stale, nil, 0o600))
	l = openLog(t, l.opts)
	assert.Equal(t, all, viewOf(t, l).Entries)
	assert.NoFileExists(t, stale)
}

// FuzzParseJournal feeds arbitrary bytes to the journal decoder: it must
// return contents or an error, never panic, and only ever return entries
// that are contiguous from the header's first index.
func FuzzParseJournal(f *testing.F) {
	id := []byte("0123456789abcdef")
	hdr := appendRecord(nil, journalHeader(5, id))
	f.Add(hdr)
	f.Add(appendBatchRecord(append([]byte(nil), hdr...), mkEnts(5, 9, 2)))
	two := appendBatchRecord(append([]byte(nil), hdr...), mkEnts(5, 9, 2))
	two = appendBatchRecord(two, mkEnts(7, 8, 3))
	f.Add(append(two, make([]byte, 64)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseJournal(data, nil)
		if err != nil {
			return
		}
		for k, e := range c.ents {
			if e.Index != c.first+uint64(k) {
				t.Fatalf("entry %d at position %d from %d", e.Index, k, c.first)
			}
		}
		if c.end > int64(len(data)) {
			t.Fatalf("end %d past %d bytes", c.end, len(data))
		}
	})
}

// TestFlushOffSavePath checks that writing the head's entries to its bolt
// file happens off the Save path: while a flush is held, Saves go on and
// their entries read back, and a truncating Save — which must not change
// the bolt file under the flusher — waits for it.
func TestFlushOffSavePath(t *testing.T) {
	o := testOptions(t.TempDir())
	o.SegmentSize = 64 << 20
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	flushHook = func() {
		once.Do(func() { close(started) })
		<-release
	}
	t.Cleanup(func() { flushHook = nil })
	l := openLog(t, o)
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free) // before the log's cleanup, which waits for the held flush
	big := func(lo, hi, term uint64) []raft.Entry {
		ents := mkEnts(lo, hi, term)
		for k := range ents {
			ents[k].Data = bytes.Repeat([]byte{byte(lo) + byte(k)}, 8<<10)
		}
		return ents
	}
	var all []raft.Entry
	next := uint64(1)
	for flushing := false; !flushing; {
		require.Less(t, next, uint64(200), "no flush started")
		ents := big(next, next+4, 1)
		require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
		all, next = append(all, ents...), next+4
		select {
		case <-started:
			flushing = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	for range 5 { // a flush in progress holds up no Save
		ents := big(next, next+4, 1)
		require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
		all, next = append(all, ents...), next+4
	}
	assert.Equal(t, all, viewOf(t, l).Entries)

	over := big(3, 5, 2)
	done := make(chan error, 1)
	go func() { done <- l.Save(raft.HardState{Term: 2}, over) }()
	select {
	case err := <-done:
		t.Fatalf("a truncating Save did not wait for the flush (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	free()
	require.NoError(t, <-done)
	want := append(all[:2:2], over...)
	assert.Equal(t, want, viewOf(t, l).Entries)
	l = reopen(t, l)
	assert.Equal(t, want, viewOf(t, l).Entries)
}

// TestCompactedWaitsForFlushBeforeChoosingSegments checks that a reader of
// the compacted entries that finds the head being flushed waits before it
// chooses the segments to read, not after: waiting releases the lock, and a
// Clean meanwhile replaced and closed a segment it had chosen but not yet
// referenced ("database not open", seen in CI).
func TestCompactedWaitsForFlushBeforeChoosingSegments(t *testing.T) {
	o := testOptions(t.TempDir())
	o.SegmentSize = 1 << 20 // flushes at 256 KiB pending; Compact seals a head past 256 KiB
	l := openLog(t, o)
	next := uint64(1)
	save := func() {
		t.Helper()
		ents := mkEnts(next, next+8, 1)
		for k := range ents {
			ents[k].Data = bytes.Repeat([]byte{byte(next) + byte(k)}, 1<<10)
		}
		require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
		next += 8
	}
	for len(segmentFiles(t, o.Dir)) < 2 { // a sealed segment, then a new head
		require.Less(t, next, uint64(20000))
		save()
	}
	save()
	require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: next - 1, Term: 1}}))
	l.mu.RLock()
	segs, headSealed := len(l.segs), len(l.segs) == 2 && l.segs[1].sealed
	l.mu.RUnlock()
	require.Equal(t, 2, segs)
	require.False(t, headSealed, "the head holds the compaction point and stays the head")

	started, release, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{}, 8)
	var once sync.Once
	flushHook = func() { once.Do(func() { close(started) }); <-release }
	flushWaitHook = func() { waiting <- struct{}{} }
	t.Cleanup(func() { flushHook, flushWaitHook = nil, nil })
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free)                     // before the log's cleanup, which waits for the held flush
	for flushing := false; !flushing; { // more entries into the head until a flush starts, and holds
		save()
		select {
		case <-started:
			flushing = true
		case <-time.After(10 * time.Millisecond):
		}
	}

	read := make(chan error, 1)
	go func() { read <- l.Compacted(func(raft.Entry) error { return nil }) }()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("Compacted did not wait for the flush")
	}
	st, err := cleanNow(l, func(uint64) bool { return false }) // rewrites the sealed segment
	require.NoError(t, err)
	require.Positive(t, st.SegmentsRewritten)
	free()
	require.NoError(t, <-read)
}
