package server_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// cleanPuts is how many map puts TestCleaning_DiskStaysBounded writes; the
// issue's full run is 1,000,000 (COPYCAT_CLEAN_PUTS=1000000).
func cleanPuts() int {
	if v, err := strconv.Atoi(os.Getenv("COPYCAT_CLEAN_PUTS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 2000
	}
	return 30000
}

const (
	cleanKeys      = 1000
	cleanValue     = 64 // bytes per value
	cleanSnapshot  = 2000
	cleanTrailing  = 500
	cleanSegment   = 1 << 20
	cleanWorkers   = 32
	cleanSamplesAt = 10 // samples of disk usage over the run
)

// TestCleaning_DiskStaysBounded writes puts over 1,000 keys on a 3-member
// cluster with bolt storage (fsync on), once with log cleaning and once
// without, and reports each member's data directory size over the run. With
// cleaning the size stays under a bound computed from the configuration —
// segments that cannot be cleaned yet (the head, and those reaching above
// the compaction point: at most SnapshotEntries+TrailingEntries entries
// plus a segment on each side) and the live data — whatever the number of
// puts; without it, it grows with every put.
func TestCleaning_DiskStaysBounded(t *testing.T) {
	puts := cleanPuts()
	on := runCleaning(t, puts, false)
	off := runCleaning(t, puts, true)

	entryBytes := int64(cleanValue + 96) // value, key, session/sequence/op, raft and bolt framing
	bound := 4*int64(cleanSegment) + 4*int64(cleanSnapshot+cleanTrailing)*entryBytes + 4*cleanKeys*entryBytes + 1<<20
	t.Logf("%d puts over %d keys, values of %d bytes, segments of %d KiB, image every %d entries, %d trailing",
		puts, cleanKeys, cleanValue, cleanSegment>>10, cleanSnapshot, cleanTrailing)
	t.Logf("with cleaning:    %6.0f puts/s, largest member directory %7.2f MiB (bound %.2f MiB), at the end %7.2f MiB; samples %s",
		on.rate, mib(on.max), mib(bound), mib(on.final), on.samples)
	t.Logf("without cleaning: %6.0f puts/s, largest member directory %7.2f MiB, at the end %7.2f MiB; samples %s",
		off.rate, mib(off.max), mib(off.final), off.samples)
	t.Logf("restart to the same state: %v with cleaning, %v without", on.restart, off.restart)
	t.Logf("a member down for the whole run rejoins: %v (%s)", on.rejoin, on.rejoinStats)
	t.Logf("a new member's catch-up from the leader: %v (%s)", on.join, on.joinStats)
	t.Logf("pauses:%s", on.pauses)
	require.LessOrEqual(t, on.max, bound, "with cleaning the data directory stays under the bound")
	require.GreaterOrEqual(t, off.final, int64(puts)*cleanValue, "without cleaning the log keeps every put")
	if puts >= 30000 {
		require.Greater(t, off.final, bound, "the run is long enough that the bound means something")
	}
}

type cleaningRun struct {
	rate        float64
	max, final  int64
	samples     string
	restart     time.Duration
	join        time.Duration
	joinStats   string
	rejoin      time.Duration
	rejoinStats string
	pauses      string
}

func runCleaning(t *testing.T, puts int, noCompaction bool) cleaningRun {
	c := copycattest.NewClusterWith(t, 3, copycattest.Options{
		Disk: true, SegmentSize: cleanSegment, SnapshotEntries: cleanSnapshot, TrailingEntries: cleanTrailing, NoCompaction: noCompaction,
	}, dmap.MapType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var maps []*dmap.MapClient
	for range 4 {
		m, err := dmap.OpenMap(ctx, c.Client(), "m")
		require.NoError(t, err)
		maps = append(maps, m)
	}
	// With cleaning, one member is down for the whole run and rejoins at
	// the end from the leader's image and live entries. (Without cleaning
	// it would replay the whole history from the leader's log: not what
	// this test measures.)
	var down uint64
	if !noCompaction {
		lead := c.WaitLeader(10 * time.Second)
		down = c.IDs()[0]
		if down == lead {
			down = c.IDs()[1]
		}
		c.Crash(down)
	}
	value := make([]byte, cleanValue)
	var next atomic.Int64
	var run cleaningRun
	var mu sync.Mutex
	sample := func() {
		mu.Lock()
		defer mu.Unlock()
		largest := int64(0)
		for _, id := range c.IDs() {
			if id == down {
				continue
			}
			largest = max(largest, dirBytes(t, c.Member(id).Dir()))
		}
		run.max = max(run.max, largest)
		run.samples += fmt.Sprintf(" %.1f", mib(largest))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cleanWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := maps[w%len(maps)]
			for {
				i := next.Add(1)
				if i > int64(puts) {
					return
				}
				_, err := m.Put(ctx, strconv.Itoa(int(i)%cleanKeys), value, 0)
				if err != nil {
					t.Errorf("put %d: %v", i, err)
					return
				}
				if i%int64(max(puts/cleanSamplesAt, 1)) == 0 {
					sample()
				}
			}
		}()
	}
	wg.Wait()
	run.rate = float64(puts) / time.Since(start).Seconds()
	// Let the last compaction and cleaning pass run.
	if !noCompaction {
		c.Eventually(30*time.Second, "the compaction point to pass most of the puts", func() bool {
			return c.Member(c.Leader()).Server().CompactionStats().Point+uint64(2*cleanSnapshot+cleanTrailing) >= c.Member(c.Leader()).Server().Status().Applied
		})
	}
	if down != 0 {
		rejoin := time.Now()
		c.Restart(down)
		c.WaitConverged(60 * time.Second)
		run.rejoin = time.Since(rejoin)
		run.rejoinStats = fmt.Sprintf("%+v", c.Member(down).Server().SnapshotStats().LastInstalled)
	}
	sample()
	for _, id := range c.IDs() {
		if srv := c.Member(id).Server(); srv != nil && !noCompaction {
			st := srv.CompactionStats()
			run.pauses += fmt.Sprintf(" member %d: %d images (longest %v on the apply path), %d cleanings (longest lock hold %v; last: %d segments rewritten, %d entries dropped, %d→%d bytes);",
				id, st.Images, st.LongestImage, st.Cleanings, st.LongestPause, st.LastClean.SegmentsRewritten, st.LastClean.EntriesDropped, st.LastClean.BytesBefore, st.LastClean.BytesAfter)
		}
	}
	run.final = 0
	for _, id := range c.IDs() {
		run.final = max(run.final, dirBytes(t, c.Member(id).Dir()))
	}

	// Restart: every member from its directory, timed until each has
	// applied what it had applied before.
	before := map[uint64]uint64{}
	for _, id := range c.IDs() {
		before[id], _, _ = c.Member(id).Server().StateDigest()
		c.Crash(id)
	}
	restart := time.Now()
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	c.Eventually(60*time.Second, "the members to apply what they had", func() bool {
		for _, id := range c.IDs() {
			idx, _, err := c.Member(id).Server().StateDigest()
			if err != nil || idx < before[id] {
				return false
			}
		}
		return true
	})
	run.restart = time.Since(restart)
	c.WaitLeader(30 * time.Second)
	c.WaitConverged(30 * time.Second)

	if !noCompaction {
		join := time.Now()
		nm, err := c.AddMember(ctx)
		require.NoError(t, err)
		c.Eventually(60*time.Second, "the new member to install a snapshot", func() bool {
			srv := nm.Server()
			return srv != nil && srv.SnapshotStats().Received > 0
		})
		c.WaitConverged(60 * time.Second)
		run.join = time.Since(join)
		run.joinStats = fmt.Sprintf("%+v", nm.Server().SnapshotStats().LastInstalled)
	}
	return run
}

// dirBytes is the disk space the files under dir take (allocated blocks:
// what the file system gives back when files shrink or go).
func dirBytes(t *testing.T, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while we walked: cleaning at work
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	require.NoError(t, err)
	return total
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
