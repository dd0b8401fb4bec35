package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, dir), out.String())
	s := out.String()
	for _, want := range []string{
		"are up; member ",
		"client connected with session ",
		`took lock "config-writer" with fencing token `,
		"shut down gracefully; member ",
		"the config survived with 2 keys (feature=on), and the client kept session ",
		"all members stopped\n",
	} {
		assert.Contains(t, s, want)
	}
	sessions := regexp.MustCompile(`session (\d+)`).FindAllStringSubmatch(s, -1)
	require.Len(t, sessions, 2)
	assert.Equal(t, sessions[0][1], sessions[1][1], "the session outlived the leader change")
	lead := regexp.MustCompile(`member (\d+) shut down gracefully; member (\d+) leads now`).FindStringSubmatch(s)
	require.NotNil(t, lead)
	assert.NotEqual(t, lead[1], lead[2])

	for _, m := range []string{"member-1", "member-2", "member-3"} {
		_, err := os.Stat(filepath.Join(dir, m))
		assert.NoError(t, err, "each member keeps its log in its own directory")
	}

	// A used data directory is refused: the new members' ports would not
	// match the addresses its logs remember.
	err := run(ctx, &bytes.Buffer{}, dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not empty")
}
