package log

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// TestInspect reports the usage of the cleaned fixture log: two cleaned
// segments holding one entry each, the head with two, the image.
func TestInspect(t *testing.T) {
	dir := closedCleanedLog(t)
	u, err := Inspect(dir)
	require.NoError(t, err)
	size := func(name string) int64 { return fileSize(t, filepath.Join(dir, name)) }
	want := Usage{
		Dir: dir, CompactionIndex: 25, CompactionTerm: 3, KeptFrom: 1, FirstIndex: 26, LastIndex: 27,
		Segments: []SegmentUsage{
			{File: segPath(dir, 1), First: 1, Last: 10, Cleaned: true, Sealed: true, Entries: 1, Bytes: size(segmentName(1))},
			{File: segPath(dir, 11), First: 11, Last: 25, Cleaned: true, Sealed: true, Entries: 1, Bytes: size(segmentName(11))},
			{File: segPath(dir, 26), First: 26, Last: 27, Entries: 2, Bytes: size(segmentName(26)) + size(journalName(26))},
		},
		Image: imagePath(dir), ImageBytes: size(imageName(25, 3)), StableBytes: size(stableFile),
		Entries: 4,
		Bytes:   dirSize(t, dir),
	}
	assert.Equal(t, want, u)
}

func TestUsageCountsLive(t *testing.T) {
	l, _ := fiveSegments(t)
	require.NoError(t, l.Compact(snapAt(12, 2, "image")))
	u, err := l.Usage(everyNth(3))
	require.NoError(t, err)
	var live []int64
	for _, s := range u.Segments {
		live = append(live, s.Live)
	}
	// 3; 6 9; 12 (13, 14, 15 are above C); 16-20; 21-25.
	assert.Equal(t, []int64{1, 2, 4, 5, 5}, live)
	assert.EqualValues(t, 17, u.Live)
	assert.EqualValues(t, 25, u.Entries)
	assert.True(t, u.LiveCounted)
	assert.Equal(t, dirSize(t, l.opts.Dir), u.Bytes)
}

func TestInspectRefuses(t *testing.T) {
	_, err := Inspect(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a log directory")

	o := testOptions(t.TempDir())
	o.BoltOptions = &bbolt.Options{Timeout: 50 * time.Millisecond, NoFreelistSync: true}
	openLog(t, o) // held by this process
	_, err = Inspect(o.Dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), o.Dir)
}
