package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShellValue(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	_, err := runShell(t, m, "value", "get", "leader-addr")
	require.Error(t, err)
	assert.Equal(t, exitFailure, exitCode(err))
	assert.Equal(t, `value "leader-addr" is unset`, err.Error())

	watch := startShell(t, m, "value", "watch", "leader-addr")
	// The watch prints nothing until it listens: write until it shows.
	n := 0
	require.Eventually(t, func() bool {
		n++
		mustShell(t, m, "value", "set", "leader-addr", fmt.Sprint("probe", n))
		return strings.Contains(watch.out.String(), "set\tprobe")
	}, 20*time.Second, 50*time.Millisecond)

	mustShell(t, m, "value", "set", "leader-addr", "10.0.0.1:80")
	assert.Equal(t, "10.0.0.1:80\n", mustShell(t, m, "value", "get", "leader-addr"))
	assert.Equal(t, `{"value":"10.0.0.1:80"}`+"\n", mustShell(t, m, "value", "get", "leader-addr", "--json"))

	// cas: swapped when the value is as expected, else exit 2 and unchanged.
	assert.Empty(t, mustShell(t, m, "value", "cas", "leader-addr", "10.0.0.1:80", "10.0.0.2:80"))
	_, err = runShell(t, m, "value", "cas", "leader-addr", "10.0.0.1:80", "10.0.0.3:80")
	require.Error(t, err)
	assert.Equal(t, exitNotDone, exitCode(err))
	assert.Equal(t, `value "leader-addr" is not "10.0.0.1:80": left unchanged`, err.Error())
	assert.Equal(t, "10.0.0.2:80\n", mustShell(t, m, "value", "get", "leader-addr"))

	// '' expects an unset value.
	mustShell(t, m, "value", "set", "leader-addr", "")
	mustShell(t, m, "value", "cas", "leader-addr", "", "10.0.0.4:80")
	assert.Equal(t, "10.0.0.4:80\n", mustShell(t, m, "value", "get", "leader-addr"))

	// A time to live unsets it.
	mustShell(t, m, "value", "set", "leader-addr", "short-lived", "--ttl", "50ms")
	watch.waitOutput(t, "set\t10.0.0.1:80\nset\t10.0.0.2:80\nunset\nset\t10.0.0.4:80\nset\tshort-lived\nexpired\n")
	_, err = runShell(t, m, "value", "get", "leader-addr")
	assert.Equal(t, exitFailure, exitCode(err))
	require.NoError(t, watch.stop(t))
}
