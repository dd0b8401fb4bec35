package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo a newcomer runs first must work and say what it did.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, runDemo(ctx, &out, false), out.String())
	s := out.String()
	for _, want := range []string{"elected leader", "fencing token", "Killing the leader", "took over", "caught up", "OK:"} {
		assert.Contains(t, s, want)
	}
	assert.Equal(t, 1, strings.Count(s, "OK:"))
}

func TestRootRejectsUnknownCommand(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"frobnicate"})
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	assert.Error(t, root.Execute())
}
