package log

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

var errInjected = errors.New("injected crash")

// setFailpoint makes the n-th failpoint reached (counting from 0) fail, and
// records the names of all those reached. n < 0 never fails.
func setFailpoint(t *testing.T, n int) *[]string {
	var seen []string
	failpoint = func(name string) error {
		seen = append(seen, name)
		if len(seen)-1 == n {
			return errInjected
		}
		return nil
	}
	t.Cleanup(func() { failpoint = nil })
	return &seen
}

// crashBase fills s with five batches (segments 1, 6, 11, 16, 21 on disk).
func crashBase(t *testing.T, s Store) {
	for lo := uint64(1); lo < 26; lo += 5 {
		require.NoError(t, s.Save(raft.HardState{Term: 2, Vote: 1, Commit: lo - 1}, mkEnts(lo, lo+5, 1+lo/10)))
	}
}

// TestCrashRecovery interrupts each multi-file operation at each of its
// failpoints, abandons the Log as a killed process would, and checks that
// Open recovers a state the operation allows: for Save a prefix of the log
// before or after it that keeps everything the operation did not touch, for
// SetCompaction the state before or after it. The recovered log must then
// take new entries.
func TestCrashRecovery(t *testing.T) {
	save := func(hs raft.HardState, ents []raft.Entry) func(Store) error {
		return func(s Store) error { return s.Save(hs, ents) }
	}
	compact := func(m raft.SnapshotMeta) func(Store) error {
		return func(s Store) error { return s.SetCompaction(m) }
	}
	ops := []struct {
		name    string
		op      func(Store) error
		compact bool
		points  string // the failpoints the operation passes, in order
	}{
		{"append with roll", save(raft.HardState{Term: 3, Vote: 1, Commit: 20}, mkEnts(26, 31, 3)), false,
			"seal.sync seal.remove-journal roll.before-rename roll.after-rename journal.before-rename journal.append save.hardstate"},
		{"truncate inside a segment", save(raft.HardState{Term: 4, Vote: 2, Commit: 7}, mkEnts(8, 13, 4)), false,
			"truncate.remove truncate.remove truncate.remove truncate.delete-range roll.before-rename roll.after-rename journal.before-rename journal.append save.hardstate"},
		{"truncate at a segment start", save(raft.HardState{Term: 4, Vote: 2, Commit: 10}, mkEnts(11, 14, 4)), false,
			"truncate.remove truncate.remove truncate.remove roll.before-rename roll.after-rename journal.before-rename journal.append save.hardstate"},
		{"truncate everything", save(raft.HardState{Term: 5, Vote: 2}, mkEnts(1, 3, 5)), false,
			"truncate.remove truncate.remove truncate.remove truncate.remove truncate.remove roll.before-rename roll.after-rename journal.before-rename journal.append save.hardstate"},
		{"compact inside", compact(raft.SnapshotMeta{Index: 12, Term: 2, Config: testConfig}), true,
			"compact.meta compact.remove compact.remove"},
		{"compact beyond the last entry", compact(raft.SnapshotMeta{Index: 40, Term: 5}), true,
			"compact.meta compact.remove compact.remove compact.remove compact.remove compact.remove"},
		{"compact with a conflicting term", compact(raft.SnapshotMeta{Index: 12, Term: 9}), true,
			"compact.meta compact.remove compact.remove compact.remove compact.remove compact.remove"},
	}
	for _, tt := range ops {
		t.Run(tt.name, func(t *testing.T) {
			model := NewMemory()
			crashBase(t, model)
			before := viewOf(t, model)
			require.NoError(t, tt.op(model))
			after := viewOf(t, model)

			// A run without failure passes the expected failpoints and ends in after.
			l := openLog(t, testOptions(t.TempDir()))
			crashBase(t, l)
			seen := setFailpoint(t, -1)
			require.NoError(t, tt.op(l))
			failpoint = nil
			require.Equal(t, tt.points, strings.Join(*seen, " "))
			assert.Equal(t, after, viewOf(t, l))

			maxCommit := after.HS.Commit
			before.HS.Commit, after.HS.Commit = 0, 0
			for n := range *seen {
				l := openLog(t, testOptions(t.TempDir()))
				crashBase(t, l)
				setFailpoint(t, n)
				require.ErrorIs(t, tt.op(l), errInjected, "failpoint %d", n)
				_, err := l.LastIndex()
				require.ErrorIs(t, err, errInjected, "the Log refuses calls after a failed write")
				l.crash()

				if tt.compact {
					// Crash again while Open finishes the compaction.
					setFailpoint(t, 0)
					if l2, err := Open(l.opts); err == nil {
						l2.crash()
					}
				}
				failpoint = nil
				l = openLog(t, l.opts)
				got := viewOf(t, l)
				// A commit index changing alone is not written before a
				// crash; it may only lag.
				assert.LessOrEqual(t, got.HS.Commit, maxCommit)
				got.HS.Commit = 0
				if tt.compact {
					if got.Meta.Index == before.Meta.Index {
						assert.Equal(t, before, got, "failpoint %d: %s", n, (*seen)[n])
					} else {
						assert.Equal(t, after, got, "failpoint %d: %s", n, (*seen)[n])
					}
				} else {
					assert.Equal(t, before.Meta, got.Meta)
					assert.True(t, isPrefix(got.Entries, before.Entries) || isPrefix(got.Entries, after.Entries),
						"failpoint %d (%s): recovered entries up to %d are a prefix of neither", n, (*seen)[n], got.Last)
					assert.GreaterOrEqual(t, len(got.Entries), commonPrefix(before.Entries, after.Entries), "failpoint %d: lost untouched entries", n)
					assert.Contains(t, []raft.HardState{before.HS, after.HS}, got.HS)
				}
				tmps, _ := filepath.Glob(filepath.Join(l.opts.Dir, "*"+tmpSuffix))
				assert.Empty(t, tmps)

				// The recovered log goes on.
				last := got.Last
				term := got.Meta.Term
				if len(got.Entries) > 0 {
					term = got.Entries[len(got.Entries)-1].Term
				}
				more := mkEnts(last+1, last+3, term+1)
				require.NoError(t, l.Save(raft.HardState{Term: term + 1}, more))
				l = reopen(t, l)
				ents, err := l.Entries(last+1, last+3, 1<<20)
				require.NoError(t, err)
				assert.Equal(t, more, ents)
			}
		})
	}
}

// TestCrashAfterRollLeavesEmptyHead checks the states a crash during a roll
// leaves: an empty head segment, with or without its journal (a crash
// between the two files), which Open accepts and the next batch fills.
func TestCrashAfterRollLeavesEmptyHead(t *testing.T) {
	for _, point := range []string{"roll.after-rename", "journal.before-rename", "journal.append"} {
		t.Run(point, func(t *testing.T) {
			l, all := fiveSegments(t)
			failAt(t, point)
			require.ErrorIs(t, l.Save(raft.HardState{}, mkEnts(26, 27, 3)), errInjected)
			l.crash()
			failpoint = nil
			_, err := os.Stat(segPath(l.opts.Dir, 26))
			require.NoError(t, err, "the new segment exists")
			l = openLog(t, l.opts)
			assert.Equal(t, all, viewOf(t, l).Entries)
			require.NoError(t, l.Save(raft.HardState{}, mkEnts(26, 28, 3)))
			assert.Equal(t, []uint64{1, 6, 11, 16, 21, 26}, segmentFiles(t, l.opts.Dir))
			l = reopen(t, l)
			assert.Equal(t, append(all, mkEnts(26, 28, 3)...), viewOf(t, l).Entries)
		})
	}
}

// failAt makes the failpoint called name fail, the first time it is reached.
func failAt(t *testing.T, name string) {
	done := false
	failpoint = func(n string) error {
		if n == name && !done {
			done = true
			return errInjected
		}
		return nil
	}
	t.Cleanup(func() { failpoint = nil })
}
