package raft

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfig_Validate(t *testing.T) {
	st := NewMemoryStorage()
	ok := DefaultConfig(1, st)
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"zero id", func(c *Config) { c.ID = 0 }, "ID must not be 0"},
		{"no storage", func(c *Config) { c.Storage = nil }, "Storage must be set"},
		{"heartbeat", func(c *Config) { c.HeartbeatTick = 0 }, "HeartbeatTick must be greater than 0"},
		{"election", func(c *Config) { c.ElectionTick = 1 }, "ElectionTick (1) must be greater than HeartbeatTick (1)"},
		{"lease margin", func(c *Config) { c.LeaseMarginTick = 10 }, "LeaseMarginTick (10) must be in [0, ElectionTick)"},
		{"inflight", func(c *Config) { c.MaxInflightMsgs = 0 }, "MaxInflightMsgs must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			_, err := New(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// Every problem is reported at once.
	_, err := New(Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ID must not be 0")
	assert.Contains(t, err.Error(), "Storage must be set")
	// Defaults fill in.
	r, err := New(ok)
	require.NoError(t, err)
	assert.Equal(t, 2, r.cfg.LeaseMarginTick)
}

// Step refuses what no correct peer sends, without panicking.
func TestStep_RefusesMalformed(t *testing.T) {
	c := newTestCluster(t, 3)
	c.elect(1)
	r := c.node(2)
	assert.Error(t, r.Step(Message{Type: MsgApp, From: 1, To: 3, Term: r.term}))
	assert.Error(t, r.Step(Message{Type: MessageType(200), From: 1, To: 2, Term: r.term}))
	// Well-typed but nonsensical messages are tolerated.
	require.NoError(t, r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: r.term, Index: 1 << 40, LogTerm: r.term}))
	require.NoError(t, r.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: r.term, Commit: 1 << 40}))
	require.NoError(t, r.Step(Message{Type: MsgSnap, From: 1, To: 2, Term: r.term}))
	require.NoError(t, c.node(1).Step(Message{Type: MsgAppResp, From: 99, To: 1, Term: c.node(1).term, Index: 5}))
	require.NoError(t, c.node(1).Step(Message{Type: MsgHeartbeatResp, From: 99, To: 1, Term: c.node(1).term, Context: 1 << 50}))
	assert.Equal(t, uint64(1), r.lead)
}
