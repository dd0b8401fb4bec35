package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A leader does not follow each commit with an append of its own
// (raft.Config.LazyCommit), but a follower still learns the commit index
// within CommitDelay when nothing else is sent: far sooner than the next
// heartbeat, which alone would tell it.
func TestCommitDelay_FollowersLearnCommitsWithoutTraffic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{
		{"deferred", 2 * time.Millisecond},
		{"at once", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const heartbeat = 15 // ticks of 10 ms: 150 ms between heartbeats
			c := newMemClusterWith(t, 3, 10*time.Millisecond, func(cfg *Config) {
				cfg.Raft.HeartbeatTick = heartbeat
				cfg.Raft.ElectionTick = 3 * heartbeat
				cfg.CommitDelay = tc.delay
			})
			lead := c.waitLeader(10 * time.Second)
			require.Equal(t, tc.delay > 0, c.members[lead].n.cfg.Raft.LazyCommit)
			// Each proposal has a one-in-three chance of meeting a heartbeat
			// within the bound; five in a row do not, without the delay's
			// broadcast.
			for i := range 5 {
				res, err := c.members[lead].n.Propose(context.Background(), []byte(fmt.Sprint("x", i)))
				require.NoError(t, err)
				start := time.Now()
				for id, m := range c.members {
					if id == lead {
						continue
					}
					c.eventually(5*time.Second, "the follower applies", func() bool { return appliedIndex(m) >= res.Index })
				}
				require.Less(t, time.Since(start), 50*time.Millisecond, "proposal %d reached the followers' state machines late", i)
				time.Sleep(time.Duration(i*37%100) * time.Millisecond) // vary the phase against the heartbeats
			}
		})
	}
}

func appliedIndex(m *testMember) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.applied) == 0 {
		return 0
	}
	return m.applied[len(m.applied)-1].Index
}
