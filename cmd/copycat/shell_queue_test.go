package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/queue"
)

func TestShellQueue(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	for _, cmd := range []string{"poll", "peek"} {
		_, err := runShell(t, m, "queue", cmd, "jobs")
		require.Error(t, err, cmd)
		assert.Equal(t, exitFailure, exitCode(err))
		assert.Equal(t, `queue "jobs" is empty`, err.Error())
	}
	mustShell(t, m, "queue", "offer", "jobs", "a")
	mustShell(t, m, "queue", "offer", "jobs", "b")
	mustShell(t, m, "queue", "offer", "jobs", "c")
	assert.Equal(t, "3\n", mustShell(t, m, "queue", "size", "jobs"))
	assert.Equal(t, "a\n", mustShell(t, m, "queue", "peek", "jobs"))
	assert.Equal(t, "a\n", mustShell(t, m, "queue", "poll", "jobs"))
	assert.Equal(t, "b\n", mustShell(t, m, "queue", "take", "jobs"))
	assert.Equal(t, `{"value":"c"}`+"\n", mustShell(t, m, "queue", "take", "jobs", "--json"))
	assert.Equal(t, "0\n", mustShell(t, m, "queue", "size", "jobs"))

	// take --wait on an empty queue gives up with exit status 2.
	began := time.Now()
	_, err := runShell(t, m, "queue", "take", "jobs", "--wait", "100ms")
	require.Error(t, err)
	assert.Equal(t, exitNotDone, exitCode(err))
	assert.Equal(t, `no element came to queue "jobs" within 100ms`, err.Error())
	assert.GreaterOrEqual(t, time.Since(began), 100*time.Millisecond)

	// A waiting take gets the next element offered, and ends.
	q := openShellQueue(t, c, "jobs")
	taker := startShell(t, m, "queue", "take", "jobs")
	require.Eventually(t, func() bool {
		n, err := q.Waiting(t.Context())
		return err == nil && n == 1
	}, 10*time.Second, 10*time.Millisecond, "the taker waits in the cluster")
	mustShell(t, m, "queue", "offer", "jobs", "d")
	require.NoError(t, taker.wait(t))
	assert.Equal(t, "d\n", taker.out.String())

	// An interrupted take withdraws: the next element stays in the queue.
	taker = startShell(t, m, "queue", "take", "jobs")
	require.Eventually(t, func() bool {
		n, err := q.Waiting(t.Context())
		return err == nil && n == 1
	}, 10*time.Second, 10*time.Millisecond)
	err = taker.stop(t)
	require.Error(t, err)
	assert.Equal(t, `interrupted before an element of queue "jobs" came`, err.Error())
	mustShell(t, m, "queue", "offer", "jobs", "e")
	assert.Equal(t, "1\n", mustShell(t, m, "queue", "size", "jobs"))
	assert.Equal(t, "e\n", mustShell(t, m, "queue", "poll", "jobs"))
}

// openShellQueue opens the queue through the test's own client.
func openShellQueue(t *testing.T, c *shellCluster, name string) *queue.QueueClient {
	t.Helper()
	q, err := queue.OpenQueue(t.Context(), c.client(t), name)
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return q
}
