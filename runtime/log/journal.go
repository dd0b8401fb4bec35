package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/copycat-go/copycat/runtime/raft"
)

// The head segment's journal.
//
// A bolt commit syncs twice (the data pages, then the meta page) and
// rewrites B+tree pages; an append-only file overwritten in place syncs
// once, and an fdatasync that changes no file size or allocation is the
// cheapest durable write the kernel has (the peers' probe on this kind of
// machine: ~60 µs, against ~200 µs for a one-entry bolt commit). So the head
// segment is written twice: every Save appends its batch to the head's
// journal, segment-<first>.journal, and syncs that file once; the entries
// go into the head's bolt file later, in larger transactions that the
// Log's flusher goroutine commits off the Save path (see segment.pending
// and Log.flushHead). Those are ordinary, synced bolt commits, so the bolt
// file always holds a prefix of what the journal holds. Once the segment
// is sealed, its last pending entries are written and the journal deleted:
// from then on the bolt file is the segment, as before journals existed.
//
// The journal is the record of what Saves returned for; Open rebuilds a
// journaled head's bolt file from it (synced, under a temporary name)
// rather than reconciling the two, which costs at most a segment's worth
// of writes at start. A head without a journal was synced when it was last
// written (by a log that predates journals, or sealed) and is sealed at
// Open, so that appends go to a new head that has one.
//
// Format: records of
//
//	uint32 length of payload, uint32 CRC-32C of payload, payload
//
// all big-endian. The first record's payload is the header: journalMagic,
// the segment's first index (uint64) and the log's identity. Every other
// record is one Save's batch: its first index (uint64), the entry count
// (uint32), then per entry its term (uint64), type (uint8), timestamp
// (int64), data length plus one (uint32; zero for nil data) and data. A
// batch whose first index is at or below the last index before it
// truncates the entries from there, as Save does. The file is grown in
// zeroed, synced chunks ahead of the writes, so a write never changes its
// size: a record of zero length and zero CRC followed by zeros ends the
// journal. A record that does not check out (or a zero header followed by
// data) is a write a crash cut short if no record that checks out follows
// it — only the last write can be torn, and its Save never returned, so it
// is dropped — and damage otherwise. Its length field is not trusted to say
// where it ends: damage may have changed it.

const (
	journalSuffix = ".journal"
	journalMagic  = "copycat journal v1"
	// journalRecordHeader is the length and CRC in front of a payload.
	journalRecordHeader = 8
	// journalEntryHeader is the fixed part of an encoded entry.
	journalEntryHeader = 8 + 1 + 8 + 4
	// journalBatchHeader is a batch's first index and count.
	journalBatchHeader = 8 + 4
	// maxJournalChunk bounds how much the journal is grown by at once: the
	// Save that grows it writes and syncs that many zeros.
	maxJournalChunk = 1 << 20
	minJournalChunk = 64 << 10
)

// journalZeros is what the journal is grown with; never written to.
var journalZeros = make([]byte, minJournalChunk)

func journalName(first uint64) string { return fmt.Sprintf("segment-%020d%s", first, journalSuffix) }

// parseJournalName returns the first index named by a journal file name.
func parseJournalName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, journalSuffix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutPrefix(s, "segment-")
	if !ok || len(s) != 20 {
		return 0, false
	}
	first, err := strconv.ParseUint(s, 10, 64)
	return first, err == nil && first > 0
}

// journal is the open journal of the head segment.
type journal struct {
	path   string
	f      *os.File
	off    int64 // where the next record goes
	alloc  int64 // the file's size: zeros from off on
	chunk  int64
	noSync bool
	buf    []byte // reused for encoding batches
}

// journalChunk is how much a journal grows by for a log whose segments seal
// at segmentSize bytes.
func journalChunk(segmentSize int64) int64 {
	return min(max(segmentSize/4, minJournalChunk), maxJournalChunk)
}

// createJournal creates the journal of the segment starting at first: its
// header is written and the file grown by one chunk under a temporary name,
// synced, renamed into place and the directory synced, so a journal that
// exists always has its header.
func createJournal(dir string, first uint64, logID []byte, o *Options) (*journal, error) {
	j := &journal{path: filepath.Join(dir, journalName(first)), chunk: journalChunk(o.SegmentSize), noSync: o.NoSync}
	tmp := j.path + tmpSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, j.errorf("create: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, j.errorf("create: %w", err)
	}
	j.f = f
	hdr := appendRecord(nil, journalHeader(first, logID))
	err = func() error {
		if _, err := f.WriteAt(hdr, 0); err != nil {
			return err
		}
		j.off, j.alloc = int64(len(hdr)), int64(len(hdr))
		if err := j.grow(j.off + j.chunk); err != nil {
			return err
		}
		if err := fail("journal.before-rename"); err != nil {
			return err
		}
		if err := os.Rename(tmp, j.path); err != nil {
			return err
		}
		return syncDir(dir, o.NoSync)
	}()
	if err != nil {
		f.Close()
		return nil, j.errorf("create: %w", err)
	}
	return j, nil
}

func journalHeader(first uint64, logID []byte) []byte {
	p := append([]byte(journalMagic), uint64Bytes(first)...)
	return append(p, logID...)
}

func (j *journal) errorf(format string, args ...any) error {
	return fmt.Errorf("log: journal %s: "+format, append([]any{j.path}, args...)...)
}

// grow extends the file with synced zeros to at least size bytes, in whole
// chunks, so that the appends up to there overwrite allocated blocks and
// their fdatasync has no metadata to write.
func (j *journal) grow(size int64) error {
	if size <= j.alloc {
		return nil
	}
	target := j.alloc + (size-j.alloc+j.chunk-1)/j.chunk*j.chunk
	if err := writeZeros(j.f, j.alloc, target); err != nil {
		return err
	}
	if !j.noSync {
		if err := j.f.Sync(); err != nil { // the size changed: fsync, not fdatasync
			return err
		}
	}
	j.alloc = target
	return nil
}

// writeZeros writes zeros to f over [from, to).
func writeZeros(f *os.File, from, to int64) error {
	for off := from; off < to; {
		n := min(int64(len(journalZeros)), to-off)
		if _, err := f.WriteAt(journalZeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// append writes ents as one record and makes it durable.
func (j *journal) append(ents []raft.Entry) error {
	j.buf = appendBatchRecord(j.buf[:0], ents)
	if uint64(len(j.buf)) > journalRecordHeader+1<<32-1 {
		return j.errorf("entries [%d, %d]: batch of %d bytes too large for a record", ents[0].Index, ents[len(ents)-1].Index, len(j.buf))
	}
	if err := j.grow(j.off + int64(len(j.buf)) + journalRecordHeader); err != nil { // keep a zero header after it
		return j.errorf("grow: %w", err)
	}
	if err := fail("journal.append"); err != nil {
		return err
	}
	if _, err := j.f.WriteAt(j.buf, j.off); err != nil {
		return j.errorf("append entries [%d, %d]: %w", ents[0].Index, ents[len(ents)-1].Index, err)
	}
	if !j.noSync {
		if err := fdatasync(j.f); err != nil {
			return j.errorf("sync entries [%d, %d]: %w", ents[0].Index, ents[len(ents)-1].Index, err)
		}
	}
	j.off += int64(len(j.buf))
	if cap(j.buf) > 4<<20 { // one large batch should not pin its buffer
		j.buf = nil
	}
	return nil
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil {
		return j.errorf("close: %w", err)
	}
	return nil
}

// remove closes and deletes the journal and syncs the directory.
func (j *journal) remove() error {
	cerr := j.f.Close()
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return j.errorf("remove: %w", errors.Join(err, cerr))
	}
	if err := syncDir(filepath.Dir(j.path), j.noSync); err != nil {
		return j.errorf("remove: sync directory: %w", err)
	}
	return nil
}

// appendRecord appends payload framed as a record.
func appendRecord(b, payload []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, journalRecordHeader)...)
	return frameRecord(append(b, payload...), start)
}

// frameRecord fills in the header reserved at b[start:] for the payload
// that follows it to the end of b.
func frameRecord(b []byte, start int) []byte {
	payload := b[start+journalRecordHeader:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

// appendBatchRecord appends ents, contiguous and ascending, as one record.
func appendBatchRecord(b []byte, ents []raft.Entry) []byte {
	start := len(b)
	b = append(b, make([]byte, journalRecordHeader)...)
	b = binary.BigEndian.AppendUint64(b, ents[0].Index)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ents)))
	for k := range ents {
		e := &ents[k]
		b = binary.BigEndian.AppendUint64(b, e.Term)
		b = append(b, byte(e.Type))
		b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp))
		b = appendDataLen(b, e.Data)
		b = append(b, e.Data...)
	}
	return frameRecord(b, start)
}

// journalContents is what parseJournal found.
type journalContents struct {
	first uint64
	ents  []raft.Entry // the segment's entries, from first on
	end   int64        // offset after the last good record
	torn  bool         // a record cut short by a crash was dropped
}

// openJournal reads the journal at path, checks it belongs to the segment
// starting at first of the log with identity logID, and opens it for
// appending after its last good record.
func openJournal(path string, first uint64, logID []byte, o *Options) (*journal, *journalContents, error) {
	j := &journal{path: path, chunk: journalChunk(o.SegmentSize), noSync: o.NoSync}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, j.errorf("read: %w", err)
	}
	c, err := parseJournal(data, logID)
	if err != nil {
		return nil, nil, j.errorf("%w", err)
	}
	if c.first != first {
		return nil, nil, j.errorf("%w: records first index %d, its name says %d", ErrCorrupt, c.first, first)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, j.errorf("open: %w", err)
	}
	j.f, j.off, j.alloc = f, c.end, int64(len(data))
	if c.torn {
		// Zero what the cut-short write left, so that the next record is
		// followed by zeros as the format requires.
		if err := writeZeros(f, c.end, int64(len(data))); err != nil {
			f.Close()
			return nil, nil, j.errorf("clear a torn record: %w", err)
		}
		if !o.NoSync {
			if err := fdatasync(f); err != nil {
				f.Close()
				return nil, nil, j.errorf("clear a torn record: %w", err)
			}
		}
	}
	return j, c, nil
}

// parseJournal decodes a journal's bytes. It never panics and allocates no
// more than data's size (plus the entry structs) whatever data holds. logID
// nil skips the identity check.
func parseJournal(data []byte, logID []byte) (*journalContents, error) {
	payload, n, ok := readRecord(data)
	if !ok {
		return nil, fmt.Errorf("%w: no valid header", ErrCorrupt)
	}
	if !bytes.HasPrefix(payload, []byte(journalMagic)) || len(payload) < len(journalMagic)+8 {
		return nil, fmt.Errorf("%w: not a journal (header %q)", ErrForeign, payload[:min(len(payload), len(journalMagic))])
	}
	c := &journalContents{first: binary.BigEndian.Uint64(payload[len(journalMagic):])}
	if id := payload[len(journalMagic)+8:]; logID != nil && !bytes.Equal(id, logID) {
		return nil, fmt.Errorf("%w: belongs to another log (identity %x, want %x)", ErrForeign, id, logID)
	}
	if c.first == 0 {
		return nil, fmt.Errorf("%w: first index 0", ErrCorrupt)
	}
	off := n
	for {
		rest := data[off:]
		if len(rest) < journalRecordHeader || allZero(rest[:journalRecordHeader]) {
			if allZero(rest) {
				break
			}
			// A last write whose first sector was lost, or damage: the
			// latter only if an acknowledged record follows.
			if p, ok := c.recordAfter(data, off); ok {
				return nil, fmt.Errorf("%w: data after the end of the records at offset %d (a record at %d)", ErrCorrupt, off, p)
			}
			c.torn = true
			break
		}
		payload, n, ok := readRecord(rest)
		if !ok {
			// Cut short by a crash only if it was the last write: no
			// record that checks out follows it. (Its length cannot be
			// trusted to say where it ends: damage may have changed it.)
			if p, ok := c.recordAfter(data, off); ok {
				return nil, fmt.Errorf("%w: damaged record at offset %d (a record at %d follows)", ErrCorrupt, off, p)
			}
			c.torn = true
			break
		}
		if err := c.addBatch(payload); err != nil {
			return nil, fmt.Errorf("%w: record at offset %d: %v", ErrCorrupt, off, err)
		}
		off += n
	}
	c.end = int64(off)
	return c, nil
}

// readRecord returns the payload of the record at the start of b and its
// length with framing, ok false if it is cut short or fails its CRC.
func readRecord(b []byte) ([]byte, int, bool) {
	if len(b) < journalRecordHeader {
		return nil, 0, false
	}
	size := binary.BigEndian.Uint32(b)
	if uint64(size) > uint64(len(b)-journalRecordHeader) {
		return nil, 0, false
	}
	payload := b[journalRecordHeader : journalRecordHeader+int(size)]
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return payload, journalRecordHeader + int(size), true
}

// addBatch applies one batch record: truncate at its first index, append.
func (c *journalContents) addBatch(p []byte) error {
	if len(p) < journalBatchHeader {
		return errors.New("batch header cut short")
	}
	idx, count := binary.BigEndian.Uint64(p), binary.BigEndian.Uint32(p[8:])
	p = p[journalBatchHeader:]
	next := c.first + uint64(len(c.ents))
	switch {
	case count == 0:
		return errors.New("empty batch")
	case idx < c.first || idx > next:
		return fmt.Errorf("batch at %d, the segment holds [%d, %d]", idx, c.first, next-1)
	case uint64(count) > uint64(len(p)/journalEntryHeader):
		return fmt.Errorf("batch of %d entries in %d bytes", count, len(p))
	}
	c.ents = c.ents[:idx-c.first]
	for k := uint32(0); k < count; k++ {
		if len(p) < journalEntryHeader {
			return fmt.Errorf("entry %d cut short", idx+uint64(k))
		}
		e := raft.Entry{
			Index:     idx + uint64(k),
			Term:      binary.BigEndian.Uint64(p),
			Type:      raft.EntryType(p[8]),
			Timestamp: int64(binary.BigEndian.Uint64(p[9:])),
		}
		size, null := dataLen(binary.BigEndian.Uint32(p[17:]))
		p = p[journalEntryHeader:]
		if uint64(size) > uint64(len(p)) {
			return fmt.Errorf("entry %d: data of %d bytes, %d left", e.Index, size, len(p))
		}
		switch e.Type {
		case raft.EntryNormal, raft.EntryNoOp, raft.EntryConfig:
		default:
			return fmt.Errorf("entry %d: unknown type %d", e.Index, e.Type)
		}
		if !null {
			e.Data = make([]byte, size)
			copy(e.Data, p)
		}
		p = p[size:]
		if n := len(c.ents); n > 0 && e.Term < c.ents[n-1].Term {
			return fmt.Errorf("entry %d has term %d below the previous %d", e.Index, e.Term, c.ents[n-1].Term)
		}
		c.ents = append(c.ents, e)
	}
	if len(p) != 0 {
		return fmt.Errorf("%d trailing bytes", len(p))
	}
	return nil
}

// appendDataLen appends the length of data plus one, zero for nil: entries
// read back are what was saved, nil or empty alike.
func appendDataLen(b, data []byte) []byte {
	if data == nil {
		return binary.BigEndian.AppendUint32(b, 0)
	}
	return binary.BigEndian.AppendUint32(b, uint32(len(data))+1)
}

// dataLen decodes appendDataLen's field.
func dataLen(v uint32) (size uint32, null bool) {
	if v == 0 {
		return 0, true
	}
	return v - 1, false
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// recordAfter looks for a batch record that checks out at an offset after
// off: one there means the bad record at off was not the last write, so it
// is damage rather than a write a crash cut short.
func (c *journalContents) recordAfter(data []byte, off int) (int, bool) {
	for p := off + 1; p+journalRecordHeader+journalBatchHeader <= len(data); p++ {
		size := binary.BigEndian.Uint32(data[p:])
		if size < journalBatchHeader+journalEntryHeader || uint64(size) > uint64(len(data)-p-journalRecordHeader) {
			continue
		}
		b := data[p+journalRecordHeader:]
		idx, count := binary.BigEndian.Uint64(b), binary.BigEndian.Uint32(b[8:])
		if idx < c.first || count == 0 || uint64(count) > uint64(size-journalBatchHeader)/journalEntryHeader {
			continue
		}
		if _, _, ok := readRecord(data[p:]); ok {
			return p, true
		}
	}
	return 0, false
}
