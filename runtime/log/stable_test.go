package log

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime/raft"
)

func TestCompactionRecordRoundTrip(t *testing.T) {
	for _, c := range []compaction{
		{floor: 1},
		{meta: raft.SnapshotMeta{Index: 25, Term: 3, Config: testConfig}, floor: 1, image: imageRef{present: true, size: 21, crc: 0xabcdef}},
		{meta: raft.SnapshotMeta{Index: 40, Term: 5}, floor: 3, install: installPromote},
		{meta: raft.SnapshotMeta{Index: 40, Term: 5}, floor: 41},
	} {
		st := openLog(t, testOptions(t.TempDir())).stable
		require.NoError(t, st.setCompaction(c))
		got, err := st.compaction()
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}
}

// metaRecord is the compaction record before log cleaning (version 1).
type metaRecord struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Version   uint8
	Index     uint64
	Term      uint64
	ConfIndex uint64
	ConfTerm  uint64
	Members   []memberRecord
}

// TestCompactionRecordVersion1 reads a record written before log cleaning:
// it keeps nothing below its point and has no image.
func TestCompactionRecordVersion1(t *testing.T) {
	r := metaRecord{Version: metaFormat, Index: 12, Term: 2, ConfIndex: 3, ConfTerm: 1, Members: []memberRecord{{ID: 1, Type: uint8(raft.Active), Addr: "a:1"}}}
	b, err := msgpack.Marshal(&r)
	require.NoError(t, err)
	c, err := decodeCompaction(b)
	require.NoError(t, err)
	assert.Equal(t, compaction{
		meta:  raft.SnapshotMeta{Index: 12, Term: 2, Config: raft.Configuration{Index: 3, Term: 1, Members: []raft.Member{{ID: 1, Type: raft.Active, Addr: "a:1"}}}},
		floor: 13,
	}, c)
	assert.False(t, c.retains())
}

func TestDecodeCompactionRejectsGarbage(t *testing.T) {
	enc := func(r compactionRecord) []byte {
		b, err := msgpack.Marshal(&r)
		require.NoError(t, err)
		return b
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"no fields":       {0x90},
		"version 3":       enc(compactionRecord{Version: 3, Floor: 1}),
		"floor 0":         enc(compactionRecord{Version: compactionFormat, Index: 5}),
		"floor above C+1": enc(compactionRecord{Version: compactionFormat, Index: 5, Floor: 7}),
		"install phase":   enc(compactionRecord{Version: compactionFormat, Index: 5, Floor: 1, Install: 9}),
		"huge members":    {0x9b, 0x02, 0x00, 0x00, 0x00, 0x00, 0xdd, 0xfd, 0xfd, 0xfd, 0xfd, 0x00, 0x91},
		"trailing":        append(enc(compactionRecord{Version: compactionFormat, Index: 5, Floor: 1}), 0),
		"string":          {0xa3, 'a', 'b', 'c'},
	} {
		_, err := decodeCompaction(b)
		assert.Error(t, err, name)
	}
}

// FuzzDecodeCompaction checks that the compaction record decoder never
// panics and that what it accepts survives a round trip.
func FuzzDecodeCompaction(f *testing.F) {
	for _, r := range []any{
		&compactionRecord{Version: compactionFormat, Index: 25, Term: 3, Floor: 1, Image: true, ImageSize: 9, ImageCRC: 7, Members: []memberRecord{{ID: 1, Addr: "a"}}},
		&metaRecord{Version: metaFormat, Index: 4, Term: 1},
	} {
		b, err := msgpack.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCompaction(b)
		if err != nil {
			return
		}
		v, err := encodeCompaction(c)
		require.NoError(t, err)
		again, err := decodeCompaction(v)
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}
