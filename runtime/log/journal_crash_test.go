package log

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Crash and damage cases of the journaled head found in its review, each a
// test that failed before its fix.

// reviewJournal returns the head journal's bytes and the offsets of its
// batch records, for a log headWithBatches built (records for [1,4), [4,7),
// [7,10)).
func reviewJournal(t *testing.T, o Options) (string, []byte, []int) {
	t.Helper()
	path := filepath.Join(o.Dir, journalName(1))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	offs := journalRecords(t, b)
	require.Len(t, offs, 3)
	return path, b, offs
}

// TestJournalDamagedLengthIsNotTorn: a damaged length field in a
// record that has synced, acknowledged records after it is read as a torn
// last record (its declared extent runs past the end of the file, or into
// the zero tail, so "nothing but zeros follows it") and Open silently drops
// it and every record after it — then openJournal zeroes them for good. A
// torn write cannot produce such a length: every byte of a torn header is
// either the writer's or the preallocated zero, so the torn value is at most
// the real length, and the real extent always fits in the file with a zero
// header after it (journal.append grows for that).
func TestJournalDamagedLengthIsNotTorn(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(b []byte, offs []int)
	}{
		{"first record's length past the end of the file", func(b []byte, offs []int) {
			b[offs[0]] ^= 0x40 // length += 1<<30
		}},
		{"middle record's length reaching into the zero tail", func(b []byte, offs []int) {
			last := offs[2]
			end := last + journalRecordHeader + int(binary.BigEndian.Uint32(b[last:]))
			// The extent of record 1 now ends 16 bytes into the zero tail.
			binary.BigEndian.PutUint32(b[offs[1]:], uint32(end+16-offs[1]-journalRecordHeader))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, all := headWithBatches(t)
			path, b, offs := reviewJournal(t, o)
			tt.damage(b, offs)
			require.NoError(t, os.WriteFile(path, b, 0o600))
			l, err := Open(o)
			if err == nil {
				got := viewOf(t, l).Entries
				l.crash()
				t.Fatalf("Open accepted a damaged journal and returned %d of the %d acknowledged entries", len(got), len(all))
			}
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

// TestJournalTornFirstSector: a Save's record spans several sectors;
// power loss before its fdatasync may persist a later sector of the write
// and not the first (the one holding the record header). That is a torn
// last record (its Save never returned), but parseJournal sees a zero
// header followed by non-zero bytes and refuses the log as corrupt.
func TestJournalTornFirstSector(t *testing.T) {
	o, l := openOneSegment(t)
	var all []raft.Entry
	for lo := uint64(1); lo < 10; lo += 3 {
		ents := mkEnts(lo, lo+3, 1)
		for k := range ents {
			ents[k].Data = bytes.Repeat([]byte{byte(lo) + byte(k) + 1}, 4000)
		}
		require.NoError(t, l.Save(raft.HardState{Term: 1}, ents))
		all = append(all, ents...)
	}
	l.crash()
	path, b, offs := reviewJournal(t, o)
	last := offs[2]
	// The sectors of the last write up to the first 4 KiB boundary after
	// its header never reached the disk: they read as the zeros that were
	// there before.
	lost := (last/4096 + 1) * 4096
	require.Greater(t, lost, last+journalRecordHeader)
	clear(b[last:lost])
	require.NoError(t, os.WriteFile(path, b, 0o600))

	l, err := Open(o)
	require.NoError(t, err, "a torn last write must not make the log unreadable")
	defer l.crash()
	assert.Equal(t, all[:6], viewOf(t, l).Entries)
}

// boltNoSync reports whether the bbolt handle under store skips fsync on
// commit (raft-boltdb keeps the handle unexported).
func boltNoSync(t *testing.T, s *segment) bool {
	t.Helper()
	f := reflect.ValueOf(s.store).Elem().FieldByName("conn")
	require.True(t, f.IsValid())
	db := *(**bbolt.DB)(unsafe.Pointer(f.UnsafeAddr()))
	return db.NoSync
}

// TestJournalSealedHeadTruncationIsAtomic: a former head is sealed with its
// store still opened NoSync (lazy). A later truncation into it (a new
// leader overwriting entries above C in a segment that rolled, or that
// Compact sealed) runs DeleteRange as a NoSync bolt commit and syncs after:
// bbolt writes the commit's pages and then its meta page with no fdatasync
// in between, so until the trailing Sync a power loss can persist the new
// meta page without the pages it points at. The segment has no journal, so
// Open trusts the bolt file, and the entries below the truncation point —
// untouched by the Save and acknowledged long ago — are unreadable.
//
// The test builds that crash image (the segment file before the Save, with
// the meta page the truncation wrote) whenever the commit ran without a
// barrier, and checks Open recovers the entries the Save did not touch.
func TestJournalSealedHeadTruncationIsAtomic(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.NoSync = false // production: only then is a NoSync store a bug
	o.SegmentSize = 1
	l := openLog(t, o)
	mk := func(lo, hi, term uint64) []raft.Entry {
		ents := mkEnts(lo, hi, term)
		for k := range ents {
			ents[k].Data = bytes.Repeat([]byte{byte(k)}, 200)
		}
		return ents
	}
	before := mk(1, 400, 1)
	require.NoError(t, l.Save(raft.HardState{Term: 1}, before))
	require.NoError(t, l.Save(raft.HardState{Term: 1}, mk(400, 410, 1))) // rolls: segment 1 sealed
	seg1 := l.segs[0]
	require.True(t, seg1.sealed)
	require.Nil(t, seg1.journal)
	unsynced := boltNoSync(t, seg1)

	p1 := filepath.Join(dir, segmentName(1))
	s0, err := os.ReadFile(p1)
	require.NoError(t, err)
	require.NoError(t, l.Save(raft.HardState{Term: 2}, mk(390, 392, 2))) // truncates segment 1 at 390
	l.crash()
	if !unsynced {
		return // the commit synced its pages before its meta page: no torn image
	}
	s1, err := os.ReadFile(p1)
	require.NoError(t, err)

	// Crash image: the truncation's meta page on disk, none of its other
	// pages; the segments it would create after it not yet there.
	ps := os.Getpagesize()
	torn := make([]byte, max(len(s0), len(s1)))
	copy(torn, s0)
	for p := 0; p < 2; p++ {
		if !bytes.Equal(s0[p*ps:(p+1)*ps], s1[p*ps:(p+1)*ps]) {
			copy(torn[p*ps:], s1[p*ps:(p+1)*ps])
		}
	}
	require.NoError(t, os.WriteFile(p1, torn, 0o644))
	for _, name := range []string{segmentName(390), journalName(390)} {
		require.NoError(t, os.Remove(filepath.Join(dir, name)))
	}

	l2, err := Open(o)
	require.NoError(t, err, "a truncation of a sealed segment cut short by power loss left it unreadable")
	defer l2.crash()
	got := viewOf(t, l2).Entries
	require.GreaterOrEqual(t, len(got), 389)
	assert.Equal(t, before[:389], got[:389])
}

// TestJournalCleanedSegmentStored: segments written by cleanedWriter (Clean,
// Install) never get stored set, so segment.get takes every index of theirs
// for a pending entry and indexes an empty slice. No caller reaches get for
// a cleaned segment today (they lie at or below C), but the invariant
// "stored == last for a segment without a journal" is broken.
func TestJournalCleanedSegmentStored(t *testing.T) {
	l, all := fiveSegments(t)
	require.NoError(t, l.Compact(snapAt(15, all[14].Term, "image")))
	_, err := l.Clean(15, everyNth(2))
	require.NoError(t, err)
	for _, s := range l.segs {
		if !s.cleaned {
			continue
		}
		assert.Equal(t, s.last, s.stored, "segment %s: stored", s.path)
		lo, _, ok := s.bounds()
		require.True(t, ok)
		assert.NotPanics(t, func() { _, _ = s.get(lo) }, "segment %s: get(%d)", s.path, lo)
	}
}

// TestJournalSaveUnknownTypeThenOpen: Save accepts an entry of a type the
// decoders refuse; with the journal, Open then refuses the whole log.
func TestJournalSaveUnknownTypeThenOpen(t *testing.T) {
	o, l := openOneSegment(t)
	err := l.Save(raft.HardState{Term: 1}, []raft.Entry{{Index: 1, Term: 1, Type: raft.EntryType(7)}})
	if err != nil {
		return // refused up front: fine
	}
	l.crash()
	l, err = Open(o)
	require.NoError(t, err, "Save returned for an entry, and Open refuses the log holding it")
	l.crash()
}

// TestJournalParseJournalHugeLength: a bad record whose length field has its
// top bit set. On 32-bit platforms (GOARCH=386, arm) parseJournal computes
// journalRecordHeader+int(length) as a negative int and slices rest with it:
// a panic instead of an error. Run with GOARCH=386 to see it.
func TestJournalParseJournalHugeLength(t *testing.T) {
	b := appendRecord(nil, journalHeader(1, nil))
	b = appendBatchRecord(b, mkEnts(1, 3, 1))
	rec := len(b)
	b = appendBatchRecord(b, mkEnts(3, 5, 1))
	b = append(b, make([]byte, 64)...)
	binary.BigEndian.PutUint32(b[rec:], 0x80000000)
	assert.NotPanics(t, func() { _, _ = parseJournal(b, nil) })
}
