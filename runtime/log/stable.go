package log

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime/raft"
)

const (
	stableFile   = "stable.db"
	stableFormat = "copycat log stable v1"
)

var (
	keyHardState  = []byte("copycat.hardstate")  // term, vote, commit: 3 big-endian uint64, one record so one fsync
	keyCompaction = []byte("copycat.compaction") // msgpack compactionRecord (version 1, before log cleaning, held only the point)
)

// Both records end with a CRC-32C of the rest: bolt checksums only its meta
// pages, and a flipped bit in a term or vote would silently break Raft's
// safety rather than stop the member.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func sealRecord(v []byte) []byte {
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(v, crcTable))
}

func openRecord(v []byte) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	body := v[:len(v)-4]
	return body, crc32.Checksum(body, crcTable) == binary.BigEndian.Uint32(v[len(v)-4:])
}

// stable is stable.db, a BoltStore used only through its stable-store API.
type stable struct {
	path  string
	store *raftboltdb.BoltStore
	id    []byte // the log's identity, also written in every segment
}

// openStable opens path, creating it with a fresh identity if it does not
// exist and create is set.
func openStable(path string, o *Options, create bool) (*stable, error) {
	_, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, fmt.Errorf("log: stable store %s: %w: missing, but the directory holds segments or images", path, ErrCorrupt)
	}
	if errors.Is(err, os.ErrNotExist) {
		id := make([]byte, 16)
		rand.Read(id)
		store, err := createBolt(path, o, [][2][]byte{{keyFormat, []byte(stableFormat)}, {keyLogID, id}}, nil, "", "")
		if err != nil {
			return nil, fmt.Errorf("log: create %s: %w", path, err)
		}
		return &stable{path: path, store: store, id: id}, nil
	}
	store, c, err := openBolt(path, o, []string{stableFormat}, nil, "")
	if err != nil {
		return nil, fmt.Errorf("log: stable store %s: %w", path, err)
	}
	s := &stable{path: path, store: store, id: c.conf[string(keyLogID)]}
	if len(s.id) != 16 {
		store.Close()
		return nil, fmt.Errorf("log: stable store %s: %w: identity of %d bytes", path, ErrCorrupt, len(s.id))
	}
	return s, nil
}

func (s *stable) hardState() (raft.HardState, error) {
	v, err := s.store.Get(keyHardState)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return raft.HardState{}, nil
	}
	if err != nil {
		return raft.HardState{}, fmt.Errorf("log: stable store %s: read hard state: %w", s.path, err)
	}
	v, ok := openRecord(v)
	if !ok || len(v) != 24 {
		return raft.HardState{}, fmt.Errorf("log: stable store %s: %w: hard state record damaged", s.path, ErrCorrupt)
	}
	return raft.HardState{
		Term:   binary.BigEndian.Uint64(v),
		Vote:   binary.BigEndian.Uint64(v[8:]),
		Commit: binary.BigEndian.Uint64(v[16:]),
	}, nil
}

func (s *stable) setHardState(hs raft.HardState) error {
	v := binary.BigEndian.AppendUint64(nil, hs.Term)
	v = binary.BigEndian.AppendUint64(v, hs.Vote)
	v = binary.BigEndian.AppendUint64(v, hs.Commit)
	if err := s.store.Set(keyHardState, sealRecord(v)); err != nil {
		return fmt.Errorf("log: stable store %s: write hard state: %w", s.path, err)
	}
	return nil
}

// compaction is the compaction state stable.db records: the compaction
// point C, which of the entries at or below it the log keeps, its image, and
// how far an Install got.
type compaction struct {
	meta raft.SnapshotMeta
	// floor is the lowest index of the entries at or below C that the log
	// keeps for Compacted: entries below it are gone (SetCompaction drops
	// them, an Install brings none). C+1 when none are kept.
	floor   uint64
	image   imageRef
	install installPhase
}

// retains reports whether the log keeps entries at or below C.
func (c *compaction) retains() bool { return c.floor <= c.meta.Index }

// installPhase is how far an Install got past its commit (see Log.Install).
type installPhase uint8

const (
	installDone      installPhase = iota
	installRemoveOld              // committed; the old segments and image are still to be deleted
	installPromote                // old files gone; the staged segments are still to be renamed into place
	installPhases
)

type memberRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       uint64
	Type     uint8
	Addr     string
}

// compactionRecord is the stored form of a compaction.
type compactionRecord struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Version   uint8
	Index     uint64
	Term      uint64
	ConfIndex uint64
	ConfTerm  uint64
	Members   []memberRecord
	Floor     uint64
	Image     bool
	ImageSize uint64
	ImageCRC  uint32
	Install   uint8
}

const (
	metaFormat       = 1
	compactionFormat = 2
)

func (s *stable) compaction() (compaction, error) {
	v, err := s.store.Get(keyCompaction)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return compaction{floor: 1}, nil
	}
	if err != nil {
		return compaction{}, fmt.Errorf("log: stable store %s: read compaction point: %w", s.path, err)
	}
	body, ok := openRecord(v)
	if !ok {
		return compaction{}, fmt.Errorf("log: stable store %s: %w: compaction point record damaged", s.path, ErrCorrupt)
	}
	c, err := decodeCompaction(body)
	if err != nil {
		return compaction{}, fmt.Errorf("log: stable store %s: %w: compaction point: %v", s.path, ErrCorrupt, err)
	}
	return c, nil
}

// decodeCompaction decodes a compaction record of either version by hand,
// so that lengths are checked against the bytes left before anything is
// allocated: a damaged record yields an error, never a huge allocation.
func decodeCompaction(body []byte) (compaction, error) {
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r) // *bytes.Reader is a ByteScanner: no buffering, r.Len() stays exact
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return compaction{}, fmt.Errorf("not a record: %w", err)
	}
	version, err := decodeUint(dec, "version", 0xff)
	if err != nil {
		return compaction{}, err
	}
	switch {
	case version == metaFormat && n == 6, version == compactionFormat && n == 11:
	case version == metaFormat || version == compactionFormat:
		return compaction{}, fmt.Errorf("version %d with %d fields", version, n)
	default:
		return compaction{}, fmt.Errorf("unsupported version %d", version)
	}
	var c compaction
	m := &c.meta
	for _, f := range []struct {
		name string
		v    *uint64
	}{{"index", &m.Index}, {"term", &m.Term}, {"configuration index", &m.Config.Index}, {"configuration term", &m.Config.Term}} {
		if *f.v, err = decodeUint(dec, f.name, ^uint64(0)); err != nil {
			return compaction{}, err
		}
	}
	members, err := dec.DecodeArrayLen()
	if err != nil {
		return compaction{}, fmt.Errorf("members: %w", err)
	}
	if members > r.Len()/4 { // a member takes at least 4 bytes
		return compaction{}, fmt.Errorf("%d members in %d bytes", members, r.Len())
	}
	for range max(members, 0) {
		if k, err := dec.DecodeArrayLen(); err != nil || k != 3 {
			return compaction{}, fmt.Errorf("member of %d fields: %v", k, err)
		}
		var mb raft.Member
		if mb.ID, err = decodeUint(dec, "member id", ^uint64(0)); err != nil {
			return compaction{}, err
		}
		typ, err := decodeUint(dec, "member type", 0xff)
		if err != nil {
			return compaction{}, err
		}
		mb.Type = raft.MemberType(typ)
		if mb.Addr, err = dec.DecodeString(); err != nil {
			return compaction{}, fmt.Errorf("member address: %w", err)
		}
		m.Config.Members = append(m.Config.Members, mb)
	}
	c.floor = m.Index + 1
	if version == compactionFormat {
		if c.floor, err = decodeUint(dec, "floor", ^uint64(0)); err != nil {
			return compaction{}, err
		}
		if c.image.present, err = dec.DecodeBool(); err != nil {
			return compaction{}, fmt.Errorf("image: %w", err)
		}
		if c.image.size, err = decodeUint(dec, "image size", ^uint64(0)); err != nil {
			return compaction{}, err
		}
		crc, err := decodeUint(dec, "image CRC", 0xffffffff)
		if err != nil {
			return compaction{}, err
		}
		c.image.crc = uint32(crc)
		phase, err := decodeUint(dec, "install phase", uint64(installPhases)-1)
		if err != nil {
			return compaction{}, err
		}
		c.install = installPhase(phase)
	}
	if r.Len() != 0 {
		return compaction{}, fmt.Errorf("%d trailing bytes", r.Len())
	}
	if c.floor == 0 || c.floor > m.Index+1 {
		return compaction{}, fmt.Errorf("floor %d outside [1, %d]", c.floor, m.Index+1)
	}
	return c, nil
}

func decodeUint(dec *msgpack.Decoder, name string, maxValue uint64) (uint64, error) {
	v, err := dec.DecodeUint64()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if v > maxValue {
		return 0, fmt.Errorf("%s %d out of range", name, v)
	}
	return v, nil
}

func (s *stable) setCompaction(c compaction) error {
	v, err := encodeCompaction(c)
	if err == nil {
		err = s.store.Set(keyCompaction, sealRecord(v))
	}
	if err != nil {
		return fmt.Errorf("log: stable store %s: write compaction point: %w", s.path, err)
	}
	return nil
}

func encodeCompaction(c compaction) ([]byte, error) {
	m := c.meta
	r := compactionRecord{
		Version: compactionFormat, Index: m.Index, Term: m.Term, ConfIndex: m.Config.Index, ConfTerm: m.Config.Term,
		Floor: c.floor, Image: c.image.present, ImageSize: c.image.size, ImageCRC: c.image.crc, Install: uint8(c.install),
	}
	for _, mb := range m.Config.Members {
		r.Members = append(r.Members, memberRecord{ID: mb.ID, Type: uint8(mb.Type), Addr: mb.Addr})
	}
	return msgpack.Marshal(&r)
}

func (s *stable) close() error { return s.store.Close() }
