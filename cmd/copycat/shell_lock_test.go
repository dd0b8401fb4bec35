package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellLock(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	assert.Equal(t, "free\n", mustShell(t, m, "lock", "holder", "orders"))

	// The first acquire holds the lock until it is interrupted.
	first := startShell(t, m, "lock", "acquire", "orders")
	tok1 := parseToken(t, first.waitLine(t))
	assert.Regexp(t, fmt.Sprintf(`^token\t%d\nsession\t\d+\nwaiters\t0\n$`, tok1), mustShell(t, m, "lock", "holder", "orders"))

	// Meanwhile a try fails with exit status 2, with and without a wait.
	began := time.Now()
	out, err := runShell(t, m, "lock", "try", "orders", "--wait", "100ms")
	require.Error(t, err)
	assert.Equal(t, exitNotDone, exitCode(err))
	assert.Equal(t, `lock "orders" was not granted within 100ms`, err.Error())
	assert.Empty(t, out)
	assert.GreaterOrEqual(t, time.Since(began), 100*time.Millisecond)
	_, err = runShell(t, m, "lock", "try", "orders")
	assert.Equal(t, exitNotDone, exitCode(err))
	assert.EqualError(t, err, `lock "orders" is held by another session`)
	assert.True(t, first.running(), "the holder still holds")

	// An acquire waiting its turn that is interrupted leaves the queue.
	waiter := startShell(t, m, "lock", "acquire", "orders")
	require.Eventually(t, func() bool {
		return strings.Contains(mustShell(t, m, "lock", "holder", "orders"), "waiters\t1")
	}, 10*time.Second, 10*time.Millisecond)
	err = waiter.stop(t)
	require.Error(t, err)
	assert.Equal(t, `interrupted before lock "orders" was granted`, err.Error())
	require.Eventually(t, func() bool {
		return strings.Contains(mustShell(t, m, "lock", "holder", "orders"), "waiters\t0")
	}, 10*time.Second, 10*time.Millisecond)

	// Interrupted, the holder releases and exits 0; the next holder gets a
	// larger token.
	require.NoError(t, first.stop(t))
	assert.Equal(t, "free\n", mustShell(t, m, "lock", "holder", "orders"))
	out = mustShell(t, m, "lock", "acquire", "orders", "--hold", "10ms")
	tok2 := parseToken(t, out)
	assert.Greater(t, tok2, tok1)

	// try on a free lock takes it and holds it for --hold, like acquire.
	out = mustShell(t, m, "lock", "try", "orders", "--hold", "10ms", "--json")
	assert.Regexp(t, `^\{"lock":"orders","token":\d+\}\n$`, out)
	assert.Equal(t, "free\n", mustShell(t, m, "lock", "holder", "orders"))
	out = mustShell(t, m, "lock", "holder", "orders", "--json")
	assert.JSONEq(t, `{"lock":"orders","free":true,"token":0,"session":0,"waiters":0}`, out)

	// A try that waits gets the lock once its holder lets go.
	holder := startShell(t, m, "lock", "acquire", "orders", "--hold", "300ms")
	tok3 := parseToken(t, holder.waitLine(t))
	out = mustShell(t, m, "lock", "try", "orders", "--wait", "20s", "--hold", "1ms")
	assert.Greater(t, parseToken(t, out), tok3)
	require.NoError(t, holder.wait(t))
}

// A holder whose session can no longer be confirmed alive (the cluster lost
// its majority) says it lost the lock, or the leadership, and fails.
func TestShellLockLost(t *testing.T) {
	c := startShellCluster(t)
	m := c.members
	holder := startShell(t, m, "lock", "acquire", "jobs", "--session-timeout", "1s")
	tok := parseToken(t, holder.waitLine(t))
	leader := startShell(t, m, "election", "campaign", "jobs", "alice", "--session-timeout", "1s")
	term := parseToken(t, leader.waitLine(t))

	for _, s := range c.servers[:2] {
		require.NoError(t, s.Stop())
	}
	err := holder.wait(t)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf(`lost lock "jobs" (token %d): its session could not be confirmed alive, so another client may hold it now`, tok), err.Error())
	err = leader.wait(t)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf(`lost the leadership of election "jobs" (term %d): the session could not be confirmed alive, so another candidate may lead now`, term), err.Error())
}
