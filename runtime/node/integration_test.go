package node

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/raft"
)

// TestIntegration_BoltTCP is the foundation's end-to-end check: three members
// (core + bolt log + TCP transport, driven by Node) elect a leader and commit
// 10,000 entries; the leader is killed; a new one is elected and commits
// more; the old leader restarts from its files and catches up; all three
// logs are identical, entry for entry.
func TestIntegration_BoltTCP(t *testing.T) {
	entries := 10000
	if v, err := strconv.Atoi(os.Getenv("COPYCAT_INTEGRATION_ENTRIES")); err == nil && v > 0 {
		entries = v
	}
	c := newBoltTCPCluster(t, 3)
	start := time.Now()
	lead := c.waitLeader(10 * time.Second)
	t.Logf("leader %d elected in %v", lead, time.Since(start))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start = time.Now()
	c.proposeMany(ctx, "a", entries, 64)
	t.Logf("%d entries committed in %v (%.0f entries/s, fsync on)", entries, time.Since(start), float64(entries)/time.Since(start).Seconds())

	c.stop(lead)
	start = time.Now()
	newLead := c.waitLeader(10 * time.Second)
	require.NotEqual(t, lead, newLead)
	t.Logf("member %d took over in %v", newLead, time.Since(start))
	c.proposeMany(ctx, "b", 1000, 16)

	c.start(lead)
	want := c.members[newLead].n.Status().HardState.Commit
	for _, m := range c.members {
		c.eventually(30*time.Second, "every member applies everything", func() bool {
			return m.n.Status().Applied >= want
		})
	}
	// Quiesce: no proposals now; wait until all last indexes agree.
	c.eventually(10*time.Second, "logs reach the same length", func() bool {
		var last uint64
		for _, m := range c.members {
			s := m.n.Status()
			if last == 0 {
				last = s.LastIndex
			}
			if s.LastIndex != last || s.Applied != last {
				return false
			}
		}
		return true
	})
	ref := logOf(t, c.members[1].store)
	require.GreaterOrEqual(t, len(ref), entries+1000)
	for id := uint64(2); id <= 3; id++ {
		got := logOf(t, c.members[id].store)
		require.Equal(t, len(ref), len(got), "member %d log length", id)
		for i := range ref {
			if !assert.Equal(t, ref[i], got[i], "member %d entry %d", id, ref[i].Index) {
				break
			}
		}
	}
	// Every proposed payload is in the log exactly once.
	seen := map[string]int{}
	for _, e := range ref {
		if e.Type == raft.EntryNormal {
			seen[string(e.Data)]++
		}
	}
	for k, v := range seen {
		require.Equal(t, 1, v, "payload %q appears %d times", k, v)
	}
	assert.Equal(t, entries+1000, len(seen), "distinct payloads in the log")
}
