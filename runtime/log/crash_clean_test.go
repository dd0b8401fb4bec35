package log

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// TestCrashRecoveryCleaning interrupts Compact, Install, Clean (rewriting
// segments one by one) and Clean (merging them) at each of their
// failpoints, abandons the Log as a killed process would, crashes again at
// each failpoint of the Open that finishes the work (on a copy of the files
// each time), and checks that the next Open recovers the state before or
// after the operation: the
// core's view, the image, and every live entry at or below the compaction
// point readable through Compacted, in order. The recovered log must then
// take new entries.
func TestCrashRecoveryCleaning(t *testing.T) {
	snap := func(index, term uint64, image string) raft.Snapshot {
		return raft.Snapshot{Meta: raft.SnapshotMeta{Index: index, Term: term, Config: testConfig}, Data: []byte(image)}
	}
	// base: segments 1, 6, 11, 16, 21 (terms 1, 1, 2, 2, 3), compacted at 8.
	base := func(t *testing.T, s Store) {
		crashBase(t, s)
		require.NoError(t, s.Compact(snap(8, 1, "image at 8")))
	}
	compactAll := func(t *testing.T, s Store) {
		crashBase(t, s)
		require.NoError(t, s.Compact(snap(25, 3, "image at 25"))) // seals the head
	}
	keep := func(idx ...uint64) func(uint64) bool {
		return func(i uint64) bool {
			for _, k := range idx {
				if i == k {
					return true
				}
			}
			return false
		}
	}
	installed := []raft.Entry{mkEnts(3, 4, 1)[0], mkEnts(12, 13, 2)[0], mkEnts(30, 31, 4)[0], mkEnts(40, 41, 5)[0]}
	ops := []struct {
		name   string
		setup  func(t *testing.T, s Store)
		reopen func(o *Options) // options for the operation, after setup
		op     func(s Store) error
		live   func(uint64) bool
		points string
	}{
		{"compact", base, nil, func(s Store) error { return s.Compact(snap(17, 2, "image at 17")) }, nil,
			"image.before-rename image.after-rename compact.meta compact.remove-image"},
		{"install", base, nil, func(s Store) error { return s.Install(snap(40, 5, "image at 40"), streamOf(installed)) }, nil,
			"install.stage install.stage install.stage install.stage image.before-rename image.after-rename install.commit " +
				"install.remove install.remove install.remove install.remove install.remove install.remove install.remove install.phase2 " +
				"install.promote install.promote install.promote install.promote install.done"},
		{"clean rewriting", compactAll, nil, func(s Store) error { _, err := cleanNow(s, keep(2, 7, 13, 21)); return err }, keep(2, 7, 13, 21),
			strings.Repeat("clean.before-rename clean.after-rename ", 4) + "clean.before-rename clean.after-rename"},
		{"clean merging", compactAll, func(o *Options) { o.SegmentSize = 1 << 20 }, func(s Store) error { _, err := cleanNow(s, keep(2, 13)); return err }, keep(2, 13),
			"clean.before-rename clean.after-rename clean.remove clean.remove clean.remove clean.remove"},
	}
	for _, tt := range ops {
		t.Run(tt.name, func(t *testing.T) {
			live := tt.live
			if live == nil {
				live = func(uint64) bool { return true }
			}
			model := NewMemory()
			tt.setup(t, model)
			before, beforeC := viewOf(t, model), liveOnly(compactedOf(t, model), live)
			require.NoError(t, tt.op(model))
			after, afterC := viewOf(t, model), liveOnly(compactedOf(t, model), live)

			start := func(t *testing.T) *Log {
				l := openLog(t, testOptions(t.TempDir()))
				tt.setup(t, l)
				if tt.reopen != nil {
					require.NoError(t, l.Close())
					tt.reopen(&l.opts)
					l = openLog(t, l.opts)
				}
				return l
			}

			// A run without failure passes the expected failpoints and ends in after.
			l := start(t)
			seen := setFailpoint(t, -1)
			require.NoError(t, tt.op(l))
			failpoint = nil
			require.Equal(t, tt.points, strings.Join(*seen, " "))
			assert.Equal(t, after, viewOf(t, l))
			assert.Equal(t, afterC, liveOnly(compactedOf(t, l), live))
			l = reopen(t, l)
			assert.Equal(t, after, viewOf(t, l))
			assert.Equal(t, afterC, liveOnly(compactedOf(t, l), live))

			// A commit index changing alone is not written before a crash; it
			// may only lag.
			maxCommit := max(before.HS.Commit, after.HS.Commit)
			before.HS.Commit, after.HS.Commit = 0, 0
			for n := range *seen {
				l := start(t)
				setFailpoint(t, n)
				require.ErrorIs(t, tt.op(l), errInjected, "failpoint %d", n)
				l.crash()
				failpoint = nil

				// Crash again at each step of the Open that finishes the
				// work, on a copy of the files each time, then recover.
				for m := 0; ; m++ {
					o := l.opts
					o.Dir = copyDir(t, l.opts.Dir)
					reached := setFailpoint(t, m)
					if l2, err := Open(o); err == nil {
						l2.crash()
					}
					failpoint = nil
					where := fmt.Sprintf("failpoint %d (%s), then %d in Open (%v)", n, (*seen)[n], m, *reached)
					checkRecovered(t, o, where, before, after, beforeC, afterC, maxCommit, live)
					if len(*reached) <= m {
						break // this Open passed all its failpoints
					}
				}
			}
		})
	}
}

// checkRecovered opens the log in o.Dir and checks that it recovered the
// state before or after an operation, then that it goes on.
func checkRecovered(t *testing.T, o Options, where string, before, after view, beforeC, afterC []raft.Entry, maxCommit uint64, live func(uint64) bool) {
	t.Helper()
	l := openLog(t, o)
	got, gotC := viewOf(t, l), liveOnly(compactedOf(t, l), live)
	assert.LessOrEqual(t, got.HS.Commit, maxCommit)
	got.HS.Commit = 0
	if got.Meta.Index == before.Meta.Index { // for Clean, before and after are the same
		assert.Equal(t, before, got, where)
		assert.Equal(t, beforeC, gotC, where)
	} else {
		assert.Equal(t, after, got, where)
		assert.Equal(t, afterC, gotC, where)
	}
	for _, pattern := range []string{"*" + tmpSuffix, "*" + installSuffix} {
		left, _ := filepath.Glob(filepath.Join(o.Dir, pattern))
		assert.Empty(t, left, where)
	}
	images, _ := filepath.Glob(filepath.Join(o.Dir, "image-*"))
	assert.Len(t, images, 1, "%s: one image, the compaction point's", where)

	// The recovered log goes on.
	last := got.Last
	term := got.Meta.Term
	if len(got.Entries) > 0 {
		term = got.Entries[len(got.Entries)-1].Term
	}
	more := mkEnts(last+1, last+3, term+1)
	require.NoError(t, l.Save(raft.HardState{Term: term + 1}, more), where)
	l = reopen(t, l)
	ents, err := l.Entries(last+1, last+3, 1<<20)
	require.NoError(t, err, where)
	assert.Equal(t, more, ents, where)
	assert.Equal(t, gotC, liveOnly(compactedOf(t, l), live), "%s: after more entries", where)
}

// copyDir copies the files of dir into a new temporary directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, de.Name()), b, 0o600))
	}
	return to
}
