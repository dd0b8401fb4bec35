package log

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// concEntry is entry i of TestCleanConcurrentWithSaves: its content follows
// from its index, so any reader can check what it got.
func concEntry(i uint64) raft.Entry {
	return raft.Entry{Index: i, Term: 1, Type: raft.EntryNormal, Timestamp: int64(i), Data: fmt.Appendf(nil, "entry %d %0200d", i, i)}
}

// TestCleanConcurrentWithSaves runs Compact and Clean rounds while other
// goroutines Save, read Entries and Term, and stream Compacted, and checks
// that every read sees exactly what was written and every live entry stays
// readable. Run it with -race. It logs the longest Save while a Clean ran
// (and outside Clean, for comparison) and Clean's longest lock hold.
func TestCleanConcurrentWithSaves(t *testing.T) {
	o := testOptions(t.TempDir())
	o.SegmentSize = 64 << 10
	o.CacheSize = 64
	l := openLog(t, o)
	live := func(i uint64) bool { return i%7 == 0 }
	rounds := 12
	if testing.Short() {
		rounds = 4
	}

	var (
		wg       sync.WaitGroup
		stop     = make(chan struct{})
		progress = make(chan struct{}, 1)
		cleaning atomic.Bool
		mu       sync.Mutex // guards the pause figures
		pauseIn  time.Duration
		pauseOut time.Duration
		saves    int
	)
	running := func() bool {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	next := uint64(1)
	wg.Add(1)
	go func() { // the driver: Save batches of 10
		defer wg.Done()
		for running() {
			batch := make([]raft.Entry, 10)
			for k := range batch {
				batch[k] = concEntry(next + uint64(k))
			}
			during := cleaning.Load()
			start := time.Now()
			if !assert.NoError(t, l.Save(raft.HardState{Term: 1}, batch)) {
				return
			}
			d := time.Since(start)
			mu.Lock()
			if during || cleaning.Load() {
				pauseIn = max(pauseIn, d)
			} else {
				pauseOut = max(pauseOut, d)
			}
			saves++
			mu.Unlock()
			next += 10
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	wg.Add(1)
	go func() { // the core: reads of the recent log
		defer wg.Done()
		for running() {
			first, err1 := l.FirstIndex()
			last, err2 := l.LastIndex()
			if !assert.NoError(t, errors.Join(err1, err2)) {
				return
			}
			lo := max(first, last-min(last, 40))
			ents, err := l.Entries(lo, last+1, 1<<20)
			if errors.Is(err, raft.ErrCompacted) {
				continue // a Compact moved the first index meanwhile
			}
			if !assert.NoError(t, err) {
				return
			}
			for _, e := range ents {
				assert.Equal(t, concEntry(e.Index), e)
			}
			if term, err := l.Term(last); err == nil && last > 0 {
				assert.EqualValues(t, 1, term)
			}
		}
	}()
	wg.Add(1)
	go func() { // a follower being sent a snapshot: Compacted streams
		defer wg.Done()
		for running() {
			snap, err := l.Snapshot()
			if !assert.NoError(t, err) {
				return
			}
			var got []uint64
			err = l.Compacted(func(e raft.Entry) error {
				if !assert.Equal(t, concEntry(e.Index), e) {
					return errors.New("bad entry")
				}
				got = append(got, e.Index)
				return nil
			})
			if !assert.NoError(t, err) {
				return
			}
			// Every live entry up to the point as of the call, in order.
			var liveGot []uint64
			for _, i := range got {
				if live(i) {
					liveGot = append(liveGot, i)
				}
			}
			assert.True(t, slices.IsSorted(got))
			for i := uint64(7); i <= snap.Meta.Index; i += 7 {
				if !assert.Contains(t, liveGot, i, "live entry %d at or below %d missing", i, snap.Meta.Index) {
					return
				}
			}
		}
	}()

	var stats []CleanStats
	for range rounds {
		// Let the driver write a few batches, then compact near the end.
		for range 5 {
			select {
			case <-progress:
			case <-time.After(10 * time.Second):
				t.Fatal("the driver made no progress")
			}
		}
		last, err := l.LastIndex()
		require.NoError(t, err)
		require.NoError(t, l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: last - 5, Term: 1}, Data: fmt.Appendf(nil, "image %d", last-5)}))
		cleaning.Store(true)
		st, err := cleanNow(l, live)
		cleaning.Store(false)
		require.NoError(t, err)
		stats = append(stats, st)
	}
	close(stop)
	wg.Wait()

	var hold time.Duration
	var rewritten int
	for _, st := range stats {
		hold = max(hold, st.LongestLockHold)
		rewritten += st.SegmentsRewritten
	}
	t.Logf("%d saves; longest Save while cleaning %v, otherwise %v; Clean's longest lock hold %v; %d segments rewritten in %d rounds",
		saves, pauseIn, pauseOut, hold, rewritten, rounds)
	require.Positive(t, rewritten, "the test must clean something")

	snap, err := l.Snapshot()
	require.NoError(t, err)
	var want []raft.Entry
	for i := uint64(7); i <= snap.Meta.Index; i += 7 {
		want = append(want, concEntry(i))
	}
	assert.Equal(t, want, liveOnly(compactedOf(t, l), live))
	l = reopen(t, l)
	assert.Equal(t, want, liveOnly(compactedOf(t, l), live))
}

// TestCloseDuringCompacted checks that Close does not wait for a Compacted
// stream, which stops with ErrClosed at its next read, and that the files
// it held are released once it does: the directory opens again.
func TestCloseDuringCompacted(t *testing.T) {
	l := openLog(t, testOptions(t.TempDir()))
	all := fillLog(t, l, 2*compactedBatch+10, 50, 10)
	require.NoError(t, l.Compact(snapAt(uint64(len(all)), all[len(all)-1].Term, "image")))
	started, resume := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		n := 0
		errc <- l.Compacted(func(raft.Entry) error {
			if n++; n == 1 {
				close(started)
				<-resume
			}
			return nil
		})
	}()
	<-started
	require.NoError(t, l.Close())
	close(resume)
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Compacted did not stop")
	}
	l = openLog(t, l.opts)
	assert.Equal(t, all, compactedOf(t, l))
}

// TestCloseDuringClean checks that Close waits for the step of Clean under
// way, which then stops with ErrClosed, leaving a log that opens whole.
func TestCloseDuringClean(t *testing.T) {
	l, all := fiveSegments(t)
	require.NoError(t, l.Compact(snapAt(25, 3, "image")))
	started, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	live := func(i uint64) bool {
		once.Do(func() { close(started); <-resume })
		return i%2 == 0
	}
	cleanErr := make(chan error, 1)
	go func() {
		_, err := cleanNow(l, live)
		cleanErr <- err
	}()
	<-started
	closeErr := make(chan error, 1)
	go func() { closeErr <- l.Close() }()
	require.Eventually(t, l.closing.Load, 10*time.Second, time.Millisecond, "Close began")
	close(resume)
	for _, c := range []chan error{cleanErr, closeErr} {
		select {
		case err := <-c:
			if c == cleanErr {
				assert.ErrorIs(t, err, ErrClosed)
			} else {
				assert.NoError(t, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Clean or Close did not return")
		}
	}
	l = openLog(t, l.opts)
	assert.Equal(t, all, compactedOf(t, l), "nothing was cleaned")
}
