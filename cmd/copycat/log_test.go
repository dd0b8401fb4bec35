package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/resources/dmap"
	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/server"
)

func runLog(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(append([]string{"log"}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.Execute()
	return out.String(), err
}

// After many overwrites of a few keys, the stopped member's log shows a
// compaction point, cleaned segments and a live fraction well below one.
func TestLogInspect(t *testing.T) {
	c := startShellCluster(t, func(cfg *server.Config) {
		cfg.SnapshotEntries, cfg.TrailingEntries, cfg.SegmentSize = 100, 20, 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := dmap.OpenMap(ctx, c.client(t), "m")
	require.NoError(t, err)
	for i := range 300 {
		_, err := m.Put(ctx, fmt.Sprint("k", i%5), []byte(fmt.Sprint(i)), 0)
		require.NoError(t, err)
	}
	srv := c.servers[0]
	require.Eventually(t, func() bool {
		st := srv.CompactionStats()
		return st.Point > 0 && st.Cleanings > 0
	}, 20*time.Second, 10*time.Millisecond, "member 1 compacts and cleans")
	u, err := srv.LogUsage()
	require.NoError(t, err)
	require.NoError(t, srv.Stop())

	out, err := runLog(t, "inspect", "--data", u.Dir)
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Contains(t, out, "compaction point")
	assert.Contains(t, out, "cleaned")
	assert.Contains(t, out, "total:")

	js, err := runLog(t, "inspect", "--data", u.Dir, "--json")
	require.NoError(t, err)
	var got rlog.Usage
	require.NoError(t, json.Unmarshal([]byte(js), &got))
	assert.Positive(t, got.CompactionIndex)
	assert.True(t, got.LiveCounted)
	assert.LessOrEqual(t, got.Live, got.Entries)
	assert.Less(t, got.Entries, int64(300), "cleaned: fewer entries than the puts alone")
}

func TestLogInspectErrors(t *testing.T) {
	_, err := runLog(t, "inspect")
	require.ErrorContains(t, err, "--data is required")
	_, err = runLog(t, "inspect", "--data", t.TempDir())
	require.ErrorContains(t, err, "holds no log")
}
