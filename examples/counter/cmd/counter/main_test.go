package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, 3, 20), out.String())
	assert.Contains(t, out.String(), "3 members on [127.0.0.1:")
	assert.Contains(t, out.String(), "hits = 60 (3 clients x 20 increments, each counted once)\n")
}
