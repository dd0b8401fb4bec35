package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellGroup(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	assert.Empty(t, mustShell(t, m, "group", "members", "workers"))
	watch := startShell(t, m, "group", "watch", "workers")
	// The watch prints nothing until it listens: join until it shows.
	require.Eventually(t, func() bool {
		mustShell(t, m, "group", "join", "workers", "probe", "--hold", "1ms")
		return watch.out.String() != ""
	}, 20*time.Second, 50*time.Millisecond)

	w1 := startShell(t, m, "group", "join", "workers", "w1", "--meta", "10.0.0.1:80")
	assert.Equal(t, "w1", w1.waitLine(t))
	w2 := startShell(t, m, "group", "join", "workers", "w2")
	assert.Equal(t, "w2", w2.waitLine(t))
	assert.Equal(t, "w1\t10.0.0.1:80\nw2\n", mustShell(t, m, "group", "members", "workers"))

	// Another process cannot take a member ID that is in use.
	_, err := runShell(t, m, "group", "join", "workers", "w1")
	require.Error(t, err)
	assert.Equal(t, `"w1" is already a member of group "workers", joined by another session`, err.Error())

	// Interrupted, a member leaves.
	require.NoError(t, w1.stop(t))
	assert.Equal(t, "w2\n", mustShell(t, m, "group", "members", "workers"))
	out := mustShell(t, m, "group", "members", "workers", "--json")
	assert.Regexp(t, `^\{"index":\d+,"member":"w2","meta":"","session":\d+\}\n$`, out)
	require.NoError(t, w2.stop(t))
	assert.Empty(t, mustShell(t, m, "group", "members", "workers"))

	watch.waitOutput(t, "joined\tw1\t10.0.0.1:80\njoined\tw2\nleft\tw1\t10.0.0.1:80\nleft\tw2\n")
	require.NoError(t, watch.stop(t))
}
