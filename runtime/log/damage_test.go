package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"

	"github.com/copycat-go/copycat/runtime/raft"
)

// closedFiveSegments returns the directory of a closed log with segments
// starting at 1, 6, 11, 16, 21 (terms 1, 1, 2, 2, 3).
func closedFiveSegments(t testing.TB) string {
	l, _ := fiveSegments(t)
	require.NoError(t, l.Save(raft.HardState{Term: 3, Vote: 1, Commit: 20}, nil))
	require.NoError(t, l.Close())
	return l.opts.Dir
}

func segPath(dir string, first uint64) string { return filepath.Join(dir, segmentName(first)) }

// rewriteEntry overwrites entry e in the segment file at path, bypassing Log.
func rewriteEntry(t *testing.T, path string, e raft.Entry, data []byte) {
	t.Helper()
	store, err := raftboltdb.NewBoltStore(path)
	require.NoError(t, err)
	defer store.Close()
	if data == nil {
		data, err = encodeEntry(&e)
		require.NoError(t, err)
	}
	require.NoError(t, store.StoreLog(&hraft.Log{Index: e.Index, Term: e.Term, Data: data}))
}

func TestOpenDamaged(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string) string // returns the file the error must name
		wantErr error
	}{
		{"empty segment", func(t *testing.T, dir string) string {
			require.NoError(t, os.WriteFile(segPath(dir, 11), nil, 0o600))
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"truncated segment", func(t *testing.T, dir string) string {
			st, err := os.Stat(segPath(dir, 16))
			require.NoError(t, err)
			require.NoError(t, os.Truncate(segPath(dir, 16), st.Size()/2))
			return segPath(dir, 16)
		}, ErrCorrupt},
		{"garbage segment", func(t *testing.T, dir string) string {
			b := make([]byte, 32<<10)
			rand.NewChaCha8([32]byte{1}).Read(b)
			require.NoError(t, os.WriteFile(segPath(dir, 6), b, 0o600))
			return segPath(dir, 6)
		}, ErrCorrupt},
		{"raft-boltdb store", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(segPath(dir, 16)))
			store, err := raftboltdb.NewBoltStore(segPath(dir, 16))
			require.NoError(t, err)
			require.NoError(t, store.StoreLog(&hraft.Log{Index: 16, Term: 2, Data: []byte("x")}))
			require.NoError(t, store.Close())
			return segPath(dir, 16)
		}, ErrForeign},
		{"other bolt database", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(segPath(dir, 16)))
			db, err := bbolt.Open(segPath(dir, 16), 0o600, nil)
			require.NoError(t, err)
			require.NoError(t, db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err }))
			require.NoError(t, db.Close())
			return segPath(dir, 16)
		}, ErrForeign},
		{"segment of another log", func(t *testing.T, dir string) string {
			other := closedFiveSegments(t)
			b, err := os.ReadFile(segPath(other, 11))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(segPath(dir, 11), b, 0o600))
			return segPath(dir, 11)
		}, ErrForeign},
		{"renamed segment", func(t *testing.T, dir string) string {
			require.NoError(t, os.Rename(segPath(dir, 21), segPath(dir, 20)))
			return segPath(dir, 20)
		}, ErrCorrupt},
		{"missing middle segment", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(segPath(dir, 11)))
			return segPath(dir, 16)
		}, ErrCorrupt},
		{"terms go down", func(t *testing.T, dir string) string {
			rewriteEntry(t, segPath(dir, 16), raft.Entry{Index: 16, Term: 1}, nil)
			return segPath(dir, 16)
		}, ErrCorrupt},
		{"undecodable entry", func(t *testing.T, dir string) string {
			rewriteEntry(t, segPath(dir, 16), raft.Entry{Index: 20, Term: 2}, []byte{0xc1, 0xff})
			return segPath(dir, 16)
		}, ErrCorrupt},
		{"entry stored under another index", func(t *testing.T, dir string) string {
			store, err := raftboltdb.NewBoltStore(segPath(dir, 6))
			require.NoError(t, err)
			data, _ := encodeEntry(&raft.Entry{})
			require.NoError(t, store.StoreLogs([]*hraft.Log{{Index: 10, Term: 1, Data: data}, {Index: 11, Term: 1, Data: data}}))
			require.NoError(t, store.Close())
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"truncated stable store", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, stableFile)
			require.NoError(t, os.Truncate(p, 100))
			return p
		}, ErrCorrupt},
		{"foreign stable store", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, stableFile)
			require.NoError(t, os.Remove(p))
			store, err := raftboltdb.NewBoltStore(p)
			require.NoError(t, err)
			require.NoError(t, store.SetUint64([]byte("CurrentTerm"), 4))
			require.NoError(t, store.Close())
			return p
		}, ErrForeign},
		{"stable store of another log", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, stableFile)
			store, err := raftboltdb.NewBoltStore(p)
			require.NoError(t, err)
			require.NoError(t, store.Set(keyLogID, make([]byte, 16)))
			require.NoError(t, store.Close())
			return p
		}, ErrForeign},
		{"flipped bit in the hard state", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, stableFile)
			store, err := raftboltdb.NewBoltStore(p)
			require.NoError(t, err)
			v, err := store.Get(keyHardState)
			require.NoError(t, err)
			v[7] ^= 1 // term
			require.NoError(t, store.Set(keyHardState, v))
			require.NoError(t, store.Close())
			return p
		}, ErrCorrupt},
		{"journal header", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, journalName(21))
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[journalRecordHeader+2] ^= 0x20 // in the magic
			require.NoError(t, os.WriteFile(p, b, 0o600))
			return p
		}, ErrCorrupt},
		{"journal of another log", func(t *testing.T, dir string) string {
			other := closedFiveSegments(t)
			b, err := os.ReadFile(filepath.Join(other, journalName(21)))
			require.NoError(t, err)
			p := filepath.Join(dir, journalName(21))
			require.NoError(t, os.WriteFile(p, b, 0o600))
			return p
		}, ErrForeign},
		{"journal under another name", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, journalName(22))
			require.NoError(t, os.Rename(filepath.Join(dir, journalName(21)), p))
			return p
		}, ErrCorrupt},
		{"missing stable store", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, stableFile)
			require.NoError(t, os.Remove(p))
			return p
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := closedFiveSegments(t)
			file := tt.damage(t, dir)
			l, err := Open(testOptions(dir))
			if err == nil {
				l.crash()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), file)
			t.Log(err)
		})
	}
}

// TestOpenByteFlips flips bytes throughout stable.db and a segment: Open
// must either fail with an error naming the file or yield a log whose reads
// either work or fail, and never panic. Whether a random flip lands on live
// data depends on where bbolt put its pages, which varies from run to run,
// so random flips check only that; a flip of both meta pages' magic, which
// no file survives, checks that damage is refused.
func TestOpenByteFlips(t *testing.T) {
	src := closedFiveSegments(t)
	flips := 150
	if testing.Short() {
		flips = 15
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{stableFile, segmentName(11)} {
		var opened, refused int
		for range flips {
			// The files are 32 KiB; bolt's data sits in the first pages.
			off, mask := rng.IntN(6*4096), byte(1+rng.IntN(255))
			flipAndOpen(t, src, name, off, mask, func(err error) {
				if err == nil {
					opened++
				} else {
					refused++
				}
			})
		}
		t.Logf("%s: %d flips opened, %d refused", name, opened, refused)
		// bbolt keeps two meta pages (pages 0 and 1, magic after the 16-byte
		// page header): with both damaged there is nothing to fall back on.
		flipBothMetasAndOpen(t, src, name, func(err error) {
			require.Error(t, err, "%s with both meta pages damaged must be refused", name)
		})
	}
}

func flipBothMetasAndOpen(t *testing.T, src, name string, result func(error)) {
	t.Helper()
	dir := t.TempDir()
	des, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		require.NoError(t, err)
		if de.Name() == name {
			b[16] ^= 0xff
			b[4096+16] ^= 0xff
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, de.Name()), b, 0o600))
	}
	l, err := Open(testOptions(dir))
	if err == nil {
		l.Close()
	} else {
		require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrForeign), "%v", err)
		require.True(t, strings.Contains(err.Error(), filepath.Join(dir, name)), "%v", err)
	}
	result(err)
}

func FuzzOpenDamagedSegment(f *testing.F) {
	for _, off := range []uint32{0, 16, 20, 4096 + 40, 8192, 8192 + 16, 12288 + 8, 16384 + 30} {
		f.Add(off, byte(0x01))
	}
	src := closedFiveSegments(f)
	f.Fuzz(func(t *testing.T, off uint32, mask byte) {
		flipAndOpen(t, src, segmentName(16), int(off), mask, func(error) {})
	})
}

// flipAndOpen copies the log in src, xors the byte at off of file name with
// mask, opens the copy and reads all of it.
func flipAndOpen(t *testing.T, src, name string, off int, mask byte, result func(error)) {
	t.Helper()
	dir := t.TempDir()
	des, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		require.NoError(t, err)
		if de.Name() == name && mask != 0 {
			b[off%len(b)] ^= mask
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, de.Name()), b, 0o600))
	}
	l, err := Open(testOptions(dir))
	result(err)
	if err != nil {
		require.True(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrForeign), "flip at %d: %v", off, err)
		require.True(t, strings.Contains(err.Error(), filepath.Join(dir, name)), "flip at %d: %v", off, err)
		return
	}
	defer l.Close()
	first, _ := l.FirstIndex()
	last, _ := l.LastIndex()
	for i := first; i <= last; i++ {
		if _, err := l.Entries(i, i+1, 0); err != nil {
			require.ErrorIs(t, err, ErrCorrupt, fmt.Sprintf("flip at %d", off))
		}
	}
	if err := l.Compacted(func(raft.Entry) error { return nil }); err != nil {
		require.ErrorIs(t, err, ErrCorrupt, fmt.Sprintf("flip at %d", off))
	}
	// Writing must not panic either.
	_ = l.Save(raft.HardState{Term: 9}, mkEnts(last+1, last+3, 9))
}
