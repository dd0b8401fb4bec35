package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellSet(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	watch := startShell(t, m, "set", "watch", "tags")
	// The watch prints nothing until it listens: add until it shows.
	n := 0
	require.Eventually(t, func() bool {
		n++
		mustShell(t, m, "set", "add", "tags", fmt.Sprint("probe", n))
		return strings.Contains(watch.out.String(), "added\tprobe")
	}, 20*time.Second, 50*time.Millisecond)
	for i := 1; i <= n; i++ {
		mustShell(t, m, "set", "remove", "tags", fmt.Sprint("probe", i))
	}

	mustShell(t, m, "set", "add", "tags", "red")
	mustShell(t, m, "set", "add", "tags", "blue")
	mustShell(t, m, "set", "add", "tags", "red")
	assert.Equal(t, "2\n", mustShell(t, m, "set", "size", "tags"))
	assert.Equal(t, "blue\nred\n", mustShell(t, m, "set", "members", "tags"))
	assert.Equal(t, "\"blue\"\n\"red\"\n", mustShell(t, m, "set", "members", "tags", "--json"))

	assert.Equal(t, "true\n", mustShell(t, m, "set", "contains", "tags", "red"))
	out, err := runShell(t, m, "set", "contains", "tags", "green")
	require.Error(t, err)
	assert.Equal(t, "false\n", out)
	assert.Equal(t, exitFailure, exitCode(err))
	assert.Empty(t, err.Error(), "the output says it: nothing more on stderr")

	mustShell(t, m, "set", "remove", "tags", "red")
	mustShell(t, m, "set", "add", "tags", "brief", "--ttl", "50ms")
	watch.waitOutput(t, "added\tred\nadded\tblue\nremoved\tred\nadded\tbrief\nremoved\tbrief\texpired\n")
	assert.Equal(t, "blue\n", mustShell(t, m, "set", "members", "tags"))
	require.NoError(t, watch.stop(t))
}
