package log

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// cleanedLogImage is the image closedCleanedLog compacts with.
var cleanedLogImage = []byte("the state image at 25")

// closedCleanedLog returns the directory of a closed log compacted at 25
// with an image, whose five segments of five entries were cleaned with 2 and
// 13 live and merged by twos and threes: its segments are [1, 10] cleaned
// holding 2, [11, 25] cleaned holding 13, and a head at 26.
func closedCleanedLog(t testing.TB) string {
	l, _ := fiveSegments(t)
	require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: 25, Term: 3}, Data: cleanedLogImage}))
	require.NoError(t, l.Save(raft.HardState{Term: 3, Vote: 1, Commit: 26}, mkEnts(26, 28, 3)))
	require.NoError(t, l.Close())
	o := l.opts
	o.SegmentSize = 10 << 10 // a fifth of a 32 KiB file is live in 1 and 11: they do not fit together
	l = openLog(t, o)
	_, err := cleanNow(l, func(i uint64) bool { return i == 2 || i == 13 })
	require.NoError(t, err)
	require.NoError(t, l.Close())
	return o.Dir
}

func imagePath(dir string) string { return filepath.Join(dir, imageName(25, 3)) }

func TestOpenDamagedCleaning(t *testing.T) {
	setRange := func(t *testing.T, path string, v []byte) {
		store, err := raftboltdb.NewBoltStore(path)
		require.NoError(t, err)
		require.NoError(t, store.Set(keyRange, v))
		require.NoError(t, store.Close())
	}
	flipFileByte := func(t *testing.T, path string, off int) {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		b[off] ^= 0x10
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string) string // returns the file the error must name
		wantErr error
	}{
		{"flipped image data", func(t *testing.T, dir string) string {
			flipFileByte(t, imagePath(dir), imageHeaderSize+3)
			return imagePath(dir)
		}, ErrCorrupt},
		{"flipped image header", func(t *testing.T, dir string) string {
			flipFileByte(t, imagePath(dir), 30) // the index
			return imagePath(dir)
		}, ErrCorrupt},
		{"truncated image", func(t *testing.T, dir string) string {
			require.NoError(t, os.Truncate(imagePath(dir), imageHeaderSize+2))
			return imagePath(dir)
		}, ErrCorrupt},
		{"image cut inside its header", func(t *testing.T, dir string) string {
			require.NoError(t, os.Truncate(imagePath(dir), 10))
			return imagePath(dir)
		}, ErrCorrupt},
		{"missing image", func(t *testing.T, dir string) string {
			require.NoError(t, os.Rename(imagePath(dir), filepath.Join(dir, imageName(24, 3))))
			return imagePath(dir)
		}, ErrCorrupt},
		{"image of another log", func(t *testing.T, dir string) string {
			other := closedCleanedLog(t)
			b, err := os.ReadFile(imagePath(other))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(imagePath(dir), b, 0o600))
			return imagePath(dir)
		}, ErrForeign},
		{"image replaced by another with a valid header", func(t *testing.T, dir string) string {
			id := logIDOf(t, dir)
			require.NoError(t, writeImageFile(imagePath(dir), imageHeader{logID: id, index: 25, term: 3, size: 13, dataCRC: 1}, []byte("another image"), true))
			return imagePath(dir)
		}, ErrCorrupt},
		{"damaged cleaned range", func(t *testing.T, dir string) string {
			setRange(t, segPath(dir, 11), []byte("garbage"))
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"cleaned range not at its first index", func(t *testing.T, dir string) string {
			setRange(t, segPath(dir, 11), encodeRange(10, 25))
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"cleaned range overlapping part of the next segment", func(t *testing.T, dir string) string {
			setRange(t, segPath(dir, 1), encodeRange(1, 20))
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"cleaned range above the compaction point", func(t *testing.T, dir string) string {
			setRange(t, segPath(dir, 11), encodeRange(11, 26))
			return segPath(dir, 26)
		}, ErrCorrupt},
		{"cleaned range short of the next segment", func(t *testing.T, dir string) string {
			setRange(t, segPath(dir, 1), encodeRange(1, 9))
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"entry outside the cleaned range", func(t *testing.T, dir string) string {
			rewriteEntry(t, segPath(dir, 11), mkEnts(30, 31, 3)[0], nil)
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"lost cleaned segment", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(segPath(dir, 11)))
			return segPath(dir, 26)
		}, ErrCorrupt},
		{"lost first segment", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(segPath(dir, 1)))
			return segPath(dir, 11)
		}, ErrCorrupt},
		{"cleaned segment renamed", func(t *testing.T, dir string) string {
			require.NoError(t, os.Rename(segPath(dir, 11), segPath(dir, 12)))
			return segPath(dir, 12)
		}, ErrCorrupt},
		{"damaged compaction record", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, stableFile)
			store, err := raftboltdb.NewBoltStore(p)
			require.NoError(t, err)
			v, err := store.Get(keyCompaction)
			require.NoError(t, err)
			v[3] ^= 1
			require.NoError(t, store.Set(keyCompaction, v))
			require.NoError(t, store.Close())
			return p
		}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := closedCleanedLog(t)
			require.Equal(t, []uint64{1, 11, 26}, segmentFiles(t, dir))
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

// logIDOf reads the identity of the log in dir.
func logIDOf(t *testing.T, dir string) []byte {
	t.Helper()
	c, err := scanBolt(filepath.Join(dir, stableFile))
	require.NoError(t, err)
	return c.conf[string(keyLogID)]
}

// TestOpenCleanedLog checks the fixture damage tests start from: it opens,
// and Compacted delivers the live entries.
func TestOpenCleanedLog(t *testing.T) {
	dir := closedCleanedLog(t)
	l := openLog(t, testOptions(dir))
	snap, err := l.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, cleanedLogImage, snap.Data)
	assert.Equal(t, []raft.Entry{mkEnts(2, 3, 1)[0], mkEnts(13, 14, 2)[0]}, liveOnly(compactedOf(t, l), func(i uint64) bool { return i == 2 || i == 13 }))
	assert.Len(t, compactedOf(t, l), 2, "every dead entry was in a rewritten segment")
}

// TestOpenRemovesStrays checks that Open deletes the files no record
// refers to: images of other points, segments an install staged but never
// committed, temporary files.
func TestOpenRemovesStrays(t *testing.T) {
	dir := closedCleanedLog(t)
	strays := []string{imageName(24, 3), imageName(30, 4), segmentName(1) + installSuffix, segmentName(40) + installSuffix, imageName(30, 4) + tmpSuffix, segmentName(1) + tmpSuffix}
	for _, name := range strays {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("stray"), 0o600))
	}
	l := openLog(t, testOptions(dir))
	for _, name := range strays {
		assert.NoFileExists(t, filepath.Join(dir, name))
	}
	snap, err := l.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, cleanedLogImage, snap.Data)
}

// TestOpenByteFlipsImage flips random bytes of the image: unlike a bolt
// file's, every byte of an image is covered by a checksum, so every flip
// must be refused.
func TestOpenByteFlipsImage(t *testing.T) {
	src := closedCleanedLog(t)
	name := imageName(25, 3)
	st, err := os.Stat(filepath.Join(src, name))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	flips := 40
	if testing.Short() {
		flips = 10
	}
	for range flips {
		off, mask := rng.IntN(int(st.Size())), byte(1+rng.IntN(255))
		flipAndOpen(t, src, name, off, mask, func(err error) {
			require.Error(t, err, "flip at %d", off)
		})
	}
}

// TestOpenByteFlipsCleanedSegment flips random bytes of a cleaned segment:
// Open must refuse the file, naming it, or yield a log whose Compacted
// either delivers or fails with ErrCorrupt, and nothing may panic.
func TestOpenByteFlipsCleanedSegment(t *testing.T) {
	src := closedCleanedLog(t)
	name := segmentName(11)
	rng := rand.New(rand.NewPCG(5, 6))
	flips := 100
	if testing.Short() {
		flips = 10
	}
	var opened, refused int
	for range flips {
		off, mask := rng.IntN(6*4096), byte(1+rng.IntN(255))
		flipAndOpen(t, src, name, off, mask, func(err error) {
			if err != nil {
				refused++
				return
			}
			opened++
		})
	}
	t.Logf("%s: %d flips opened, %d refused", name, opened, refused)
}
