package log

import (
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
	keyCompaction = []byte("copycat.compaction") // msgpack metaRecord
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
		return nil, fmt.Errorf("log: stable store %s: %w: missing, but the directory holds segments", path, ErrCorrupt)
	}
	if errors.Is(err, os.ErrNotExist) {
		id := make([]byte, 16)
		rand.Read(id)
		store, err := createBolt(path, o, [][2][]byte{{keyFormat, []byte(stableFormat)}, {keyLogID, id}}, "", "")
		if err != nil {
			return nil, fmt.Errorf("log: create %s: %w", path, err)
		}
		return &stable{path: path, store: store, id: id}, nil
	}
	store, c, err := openBolt(path, o, stableFormat, nil, "")
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

// metaRecord is the stored form of a raft.SnapshotMeta.
type metaRecord struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Version   uint8
	Index     uint64
	Term      uint64
	ConfIndex uint64
	ConfTerm  uint64
	Members   []memberRecord
}

type memberRecord struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       uint64
	Type     uint8
	Addr     string
}

const metaFormat = 1

func (s *stable) compaction() (raft.SnapshotMeta, error) {
	v, err := s.store.Get(keyCompaction)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return raft.SnapshotMeta{}, nil
	}
	if err != nil {
		return raft.SnapshotMeta{}, fmt.Errorf("log: stable store %s: read compaction point: %w", s.path, err)
	}
	var r metaRecord
	body, ok := openRecord(v)
	if !ok {
		return raft.SnapshotMeta{}, fmt.Errorf("log: stable store %s: %w: compaction point record damaged", s.path, ErrCorrupt)
	}
	if err := msgpack.Unmarshal(body, &r); err != nil || r.Version != metaFormat {
		return raft.SnapshotMeta{}, fmt.Errorf("log: stable store %s: %w: compaction point (version %d): %v", s.path, ErrCorrupt, r.Version, err)
	}
	m := raft.SnapshotMeta{Index: r.Index, Term: r.Term, Config: raft.Configuration{Index: r.ConfIndex, Term: r.ConfTerm}}
	for _, mr := range r.Members {
		m.Config.Members = append(m.Config.Members, raft.Member{ID: mr.ID, Type: raft.MemberType(mr.Type), Addr: mr.Addr})
	}
	return m, nil
}

func (s *stable) setCompaction(m raft.SnapshotMeta) error {
	r := metaRecord{Version: metaFormat, Index: m.Index, Term: m.Term, ConfIndex: m.Config.Index, ConfTerm: m.Config.Term}
	for _, mb := range m.Config.Members {
		r.Members = append(r.Members, memberRecord{ID: mb.ID, Type: uint8(mb.Type), Addr: mb.Addr})
	}
	v, err := msgpack.Marshal(&r)
	if err == nil {
		err = s.store.Set(keyCompaction, sealRecord(v))
	}
	if err != nil {
		return fmt.Errorf("log: stable store %s: write compaction point: %w", s.path, err)
	}
	return nil
}

func (s *stable) close() error { return s.store.Close() }
