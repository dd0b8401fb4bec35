package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/dmap"
)

func TestShellMap(t *testing.T) {
	c := startShellCluster(t)
	m := c.members

	assert.Equal(t, "0\n", mustShell(t, m, "map", "size", "cfg"))
	mustShell(t, m, "map", "put", "cfg", "b", "two words")
	mustShell(t, m, "map", "put", "cfg", "a", "1")
	mustShell(t, m, "map", "put", "cfg", "empty", "")
	assert.Equal(t, "1\n", mustShell(t, m, "map", "get", "cfg", "a"))
	assert.Equal(t, "two words\n", mustShell(t, m, "map", "get", "cfg", "b"))
	assert.Equal(t, "\n", mustShell(t, m, "map", "get", "cfg", "empty"), "an empty value is not a missing key")
	assert.Equal(t, "3\n", mustShell(t, m, "map", "size", "cfg"))
	assert.Equal(t, "a\t1\nb\ttwo words\nempty\t\n", mustShell(t, m, "map", "list", "cfg"))
	assert.Equal(t, `{"key":"a","value":"1"}`+"\n", mustShell(t, m, "map", "get", "cfg", "a", "--json"))

	out, err := runShell(t, m, "map", "get", "cfg", "missing")
	require.Error(t, err)
	assert.Empty(t, out)
	assert.Equal(t, exitFailure, exitCode(err))
	assert.Equal(t, `key "missing" is not in map "cfg"`, err.Error())

	mustShell(t, m, "map", "remove", "cfg", "a")
	mustShell(t, m, "map", "remove", "cfg", "never-there")
	_, err = runShell(t, m, "map", "get", "cfg", "a")
	assert.Equal(t, exitFailure, exitCode(err))
	assert.Equal(t, "2\n", mustShell(t, m, "map", "size", "cfg"))

	mustShell(t, m, "map", "clear", "cfg")
	assert.Equal(t, "0\n", mustShell(t, m, "map", "size", "cfg"))
	assert.Empty(t, mustShell(t, m, "map", "list", "cfg"))

	// list pages through Entries: more keys than one page holds.
	const many = 1005 // dmap.MaxPage is 1000
	var want strings.Builder
	for i := range many {
		want.WriteString(fmt.Sprintf("k%04d\tv%d\n", i, i))
	}
	putMany(t, c, "big", many)
	assert.Equal(t, want.String(), mustShell(t, m, "map", "list", "big"))
	assert.Equal(t, fmt.Sprint(many, "\n"), mustShell(t, m, "map", "size", "big"))
}

func TestShellMapWatch(t *testing.T) {
	c := startShellCluster(t)
	m := c.members
	all := startShell(t, m, "map", "watch", "cfg")
	one := startShell(t, m, "map", "watch", "cfg", "b")
	// The watches print nothing until they listen: write until they show it.
	n := 0
	require.Eventually(t, func() bool {
		n++
		mustShell(t, m, "map", "put", "cfg", "b", fmt.Sprint("ready", n))
		return strings.Contains(all.out.String(), "\tb\tready") && strings.Contains(one.out.String(), "\tb\tready")
	}, 20*time.Second, 50*time.Millisecond)

	mustShell(t, m, "map", "put", "cfg", "a", "1")
	mustShell(t, m, "map", "put", "cfg", "a", "2")
	mustShell(t, m, "map", "remove", "cfg", "a")
	mustShell(t, m, "map", "remove", "cfg", "b")
	all.waitOutput(t, "inserted\ta\t1\nupdated\ta\t2\nremoved\ta\nremoved\tb\n")
	one.waitOutput(t, "removed\tb\n")
	require.NoError(t, all.stop(t))
	require.NoError(t, one.stop(t))
	assert.NotContains(t, one.out.String(), "\ta\t", "the key filter holds")
}

// putMany writes k0000..k(n-1) into the map through one client session,
// many at a time, rather than running a thousand commands.
func putMany(t *testing.T, c *shellCluster, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mc, err := dmap.OpenMap(ctx, c.client(t), name)
	require.NoError(t, err)
	var (
		wg   sync.WaitGroup
		errs = make(chan error, n)
		sem  = make(chan struct{}, 16)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := mc.Put(ctx, fmt.Sprintf("k%04d", i), []byte(fmt.Sprint("v", i)), 0); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
}
