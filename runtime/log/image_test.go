package log

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

var testLogID = bytes.Repeat([]byte{0xab}, 16)

func TestImageHeaderRoundTrip(t *testing.T) {
	for _, h := range []imageHeader{
		{logID: testLogID, index: 1, term: 1},
		{logID: testLogID, index: 1 << 40, term: 77, size: 1 << 33, dataCRC: 0xdeadbeef},
	} {
		b := encodeImageHeader(h)
		require.Len(t, b, imageHeaderSize)
		got, err := decodeImageHeader(b)
		require.NoError(t, err)
		assert.Equal(t, h, got)
	}
}

func TestDecodeImageHeaderRejectsGarbage(t *testing.T) {
	good := encodeImageHeader(imageHeader{logID: testLogID, index: 9, term: 2, size: 5, dataCRC: 7})
	reseal := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[imageHeaderSize-4:], crc32.Checksum(b[:imageHeaderSize-4], crcTable))
		return b
	}
	version2 := bytes.Clone(good)
	binary.BigEndian.PutUint32(version2[8:], 2)
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "header of 0 bytes"},
		{"short", good[:imageHeaderSize-1], "header of"},
		{"no magic", append([]byte("NOTMAGIC"), good[8:]...), "magic"},
		{"flipped index", func() []byte { b := bytes.Clone(good); b[30] ^= 1; return b }(), "checksum"},
		{"version 2", reseal(version2), "version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeImageHeader(tt.b)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestImageNames(t *testing.T) {
	name := imageName(52731, 9)
	assert.Equal(t, "image-00000000000000052731-00000000000000000009.snap", name)
	index, term, ok := parseImageName(name)
	assert.True(t, ok)
	assert.Equal(t, []uint64{52731, 9}, []uint64{index, term})
	for _, bad := range []string{"image-1-2.snap", name + ".tmp", "segment-00000000000000000001.db", "image-00000000000000052731_00000000000000000009.snap"} {
		_, _, ok := parseImageName(bad)
		assert.False(t, ok, bad)
	}
}

func TestWriteAndReadImage(t *testing.T) {
	dir := t.TempDir()
	meta := raft.SnapshotMeta{Index: 12, Term: 3}
	data := bytes.Repeat([]byte("state "), 1000)
	ref, err := writeImage(dir, testLogID, meta, data, false)
	require.NoError(t, err)
	got, err := readImage(dir, testLogID, meta, ref)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
	assert.Empty(t, leftovers)

	// The record's size and CRC pin the file's contents.
	_, err = readImage(dir, testLogID, meta, imageRef{present: true, size: ref.size, crc: ref.crc + 1})
	assert.ErrorIs(t, err, ErrCorrupt)
	// A file claiming more data than it holds is refused before allocating.
	path := filepath.Join(dir, imageName(12, 3))
	require.NoError(t, writeImageFile(path, imageHeader{logID: testLogID, index: 12, term: 3, size: 1 << 50, dataCRC: 1}, nil, true))
	_, err = readImage(dir, testLogID, meta, imageRef{present: true, size: 1 << 50, crc: 1})
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), path)
	require.NoError(t, os.Remove(path))
}

// FuzzImageHeader checks that the header decoder never panics and that
// whatever it accepts survives an encode/decode round trip unchanged.
func FuzzImageHeader(f *testing.F) {
	f.Add(encodeImageHeader(imageHeader{logID: testLogID, index: 9, term: 2, size: 5, dataCRC: 7}))
	f.Add(encodeImageHeader(imageHeader{logID: make([]byte, 16)}))
	f.Add([]byte(imageMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeImageHeader(b)
		if err != nil {
			return
		}
		require.Len(t, h.logID, 16)
		again, err := decodeImageHeader(encodeImageHeader(h))
		require.NoError(t, err)
		require.Equal(t, h, again)
		require.Equal(t, b[:imageHeaderSize], encodeImageHeader(h))
	})
}
