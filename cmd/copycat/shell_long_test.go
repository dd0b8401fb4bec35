package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellLong(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	assert.Equal(t, "0\n", mustShell(t, m, "long", "get", "hits"))
	assert.Equal(t, "5\n", mustShell(t, m, "long", "set", "hits", "5"))
	assert.Equal(t, "2\n", mustShell(t, m, "long", "add", "hits", "-3"), "negative numbers are arguments")
	assert.Equal(t, "3\n", mustShell(t, m, "long", "incr", "hits"))
	assert.Equal(t, "-10\n", mustShell(t, m, "long", "cas", "hits", "3", "-10"))
	out, err := runShell(t, m, "long", "cas", "hits", "3", "11")
	require.Error(t, err)
	assert.Empty(t, out)
	assert.Equal(t, exitNotDone, exitCode(err))
	assert.Equal(t, `long "hits" is not 3: left unchanged`, err.Error())
	assert.Equal(t, "-10\n", mustShell(t, m, "long", "get", "hits"))
	assert.Equal(t, "-10\n", mustShell(t, m, "long", "get", "hits", "--json"))

	_, err = runShell(t, m, "long", "set", "hits", "1.5")
	assert.EqualError(t, err, `N "1.5" is not a 64-bit integer`)
}
