package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellElection(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	assert.Equal(t, "none\n", mustShell(t, m, "election", "leader", "scheduler"))
	observer := startShell(t, m, "election", "observe", "scheduler")
	// The observer prints nothing until it listens: campaign until it shows.
	require.Eventually(t, func() bool {
		mustShell(t, m, "election", "campaign", "scheduler", "probe", "--hold", "1ms")
		return strings.Contains(observer.out.String(), "leader\tprobe\t")
	}, 20*time.Second, 50*time.Millisecond)

	alice := startShell(t, m, "election", "campaign", "scheduler", "alice")
	term1 := parseToken(t, alice.waitLine(t))
	assert.Regexp(t, fmt.Sprintf(`^candidate\talice\nterm\t%d\nsession\t\d+\nwaiting\t0\n$`, term1),
		mustShell(t, m, "election", "leader", "scheduler"))
	out := mustShell(t, m, "election", "leader", "scheduler", "--json")
	assert.Contains(t, out, `"candidate":"alice"`)
	assert.Contains(t, out, fmt.Sprintf(`"term":%d`, term1))

	// bob waits his turn, and is elected once alice is interrupted.
	bob := startShell(t, m, "election", "campaign", "scheduler", "bob")
	require.Eventually(t, func() bool {
		return strings.Contains(mustShell(t, m, "election", "leader", "scheduler"), "waiting\t1")
	}, 10*time.Second, 10*time.Millisecond)
	assert.True(t, bob.running())
	assert.Empty(t, bob.out.String(), "not elected while alice leads")
	require.NoError(t, alice.stop(t))
	term2 := parseToken(t, bob.waitLine(t))
	assert.Greater(t, term2, term1)
	assert.Contains(t, mustShell(t, m, "election", "leader", "scheduler"), "candidate\tbob\n")

	// The observer saw every change, in order.
	observer.waitOutput(t, fmt.Sprintf("leader\talice\t%d\nleader\tbob\t%d\n", term1, term2))
	require.NoError(t, bob.stop(t))
	observer.waitOutput(t, "none\n")
	require.NoError(t, observer.stop(t))
	assert.Equal(t, "none\n", mustShell(t, m, "election", "leader", "scheduler"))

	// --hold resigns by itself.
	out = mustShell(t, m, "election", "campaign", "scheduler", "carol", "--hold", "10ms")
	assert.Greater(t, parseToken(t, out), term2)
}
