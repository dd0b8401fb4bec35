package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runServerCmd runs `copycat server args...` in-process until ctx ends.
func runServerCmd(ctx context.Context, out *syncBuffer, args ...string) error {
	root := newRoot()
	root.SetArgs(append([]string{"server"}, args...))
	root.SetOut(out)
	root.SetErr(out)
	return root.ExecuteContext(ctx)
}

func TestServerFlagErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	data := filepath.Join(dir, "data")
	base := []string{"--id", "1", "--listen", "127.0.0.1:7001", "--data", data}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "--id is required"},
		{"id zero", []string{"--id", "0", "--listen", "127.0.0.1:7001", "--data", data}, "--id is required"},
		{"id not a number", []string{"--id", "one", "--listen", "127.0.0.1:7001", "--data", data}, `invalid argument "one"`},
		{"no listen", []string{"--id", "1", "--data", data}, "--listen is required"},
		{"no data", []string{"--id", "1", "--listen", "127.0.0.1:7001"}, "--data is required"},
		{"listen not host:port", []string{"--id", "1", "--listen", "localhost", "--data", data}, "is not a host:port"},
		{"listen without host needs advertise", []string{"--id", "1", "--listen", ":7001", "--data", data}, "set --advertise"},
		{"bad advertise", with("--advertise", "nowhere"), "--advertise"},
		{"bad http", with("--http", "8080"), "--http"},
		{"empty cluster id", with("--cluster-id", ""), "--cluster-id"},
		{"zero tick", with("--tick", "0s"), "--tick must be positive"},
		{"election ticks too few", with("--election-ticks", "2"), "--election-ticks must be more than 2"},
		{"partial TLS", with("--tls-cert", "c.pem"), "go together"},
		{"missing TLS files", with("--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"), "cannot load the TLS certificate"},
		{"bootstrap garbage", with("--bootstrap", "1=127.0.0.1:7001,two"), `--bootstrap entry "two" is not id=host:port`},
		{"bootstrap id zero", with("--bootstrap", "0=127.0.0.1:7001"), "no positive member ID"},
		{"bootstrap bad addr", with("--bootstrap", "1=127.0.0.1"), "no host:port address"},
		{"bootstrap duplicate id", with("--bootstrap", "1=127.0.0.1:7001,1=127.0.0.1:7002"), "lists member 1 twice"},
		{"bootstrap duplicate addr", with("--bootstrap", "1=127.0.0.1:7001,2=127.0.0.1:7001"), "lists address 127.0.0.1:7001 twice"},
		{"bootstrap without this member", with("--bootstrap", "2=127.0.0.1:7002,3=127.0.0.1:7003"), "does not include this member (1)"},
		{"bootstrap with another address", with("--bootstrap", "1=127.0.0.1:9999,2=127.0.0.1:7002"), "gives member 1 the address 127.0.0.1:9999"},
		{"data is a file", []string{"--id", "1", "--listen", "127.0.0.1:7001", "--data", file}, "is not a directory"},
		{"data under a file", []string{"--id", "1", "--listen", "127.0.0.1:7001", "--data", filepath.Join(file, "sub")}, "cannot create the data directory"},
		{"positional argument", with("extra"), "unknown command"},
		{"unknown flag", with("--peers", "x"), "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out syncBuffer
			err := runServerCmd(ctx, &out, tc.args...)
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, tc.want)
			assert.NotContains(t, msg, "\n", "one line")
			assert.NotContains(t, msg, "goroutine")
		})
	}
	_, err := os.Stat(data)
	assert.True(t, os.IsNotExist(err), "flag errors must not create the data directory")
}

// member is one in-process `copycat server`.
type member struct {
	id     uint64
	addr   string
	http   string
	dir    string
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func (m *member) start(t *testing.T, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	m.cancel, m.done, m.out = cancel, done, &syncBuffer{}
	args := append([]string{
		"--id", fmt.Sprint(m.id), "--listen", m.addr, "--data", m.dir, "--http", m.http,
		"--cluster-id", "test-cluster",
	}, extra...)
	out := m.out
	go func() { done <- runServerCmd(ctx, out, args...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	})
}

// stop cancels the command's context (as SIGTERM does) and returns its error.
func (m *member) stop(t *testing.T) error {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		m.done <- err // let Cleanup see it too
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("member %d did not stop; log:\n%s", m.id, m.out.String())
		return nil
	}
}

func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (m *member) status(t *testing.T) memberStatus {
	t.Helper()
	code, body, err := httpGet("http://" + m.http + "/status")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	var st memberStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	return st
}

// waitHealthy waits until the member's /health answers 200.
func (m *member) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-m.done:
			t.Fatalf("member %d exited: %v\n%s", m.id, err, m.out.String())
		default:
		}
		code, body, err := httpGet("http://" + m.http + "/health")
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprint(code, " ", body, " ", err)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("member %d not healthy: %s\n%s", m.id, last, m.out.String())
}

func TestServerCluster(t *testing.T) {
	addrs, err := freeAddrs(4)
	require.NoError(t, err)
	https, err := freeAddrs(4)
	require.NoError(t, err)
	dir := t.TempDir()
	var boot []string
	members := make([]*member, 3)
	for i := range members {
		members[i] = &member{id: uint64(i + 1), addr: addrs[i], http: https[i], dir: filepath.Join(dir, fmt.Sprint("m", i+1))}
		boot = append(boot, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	for _, m := range members {
		m.start(t, "--bootstrap", strings.Join(boot, ","))
	}
	for _, m := range members {
		m.waitHealthy(t)
	}

	// /status: every member agrees on the leader; the leader lists 3 ACTIVE members.
	var leader *member
	require.Eventually(t, func() bool {
		leader = nil
		var lead uint64
		for _, m := range members {
			st := m.status(t)
			if st.Leader == nil || (lead != 0 && st.Leader.ID != lead) {
				return false
			}
			lead = st.Leader.ID
			if st.Role == "leader" {
				leader = m
			}
		}
		return leader != nil && leader.id == lead
	}, 10*time.Second, 20*time.Millisecond)
	st := leader.status(t)
	assert.Equal(t, leader.id, st.ID)
	assert.Equal(t, "test-cluster", st.ClusterID)
	assert.Equal(t, leader.addr, st.Leader.Addr)
	assert.GreaterOrEqual(t, st.Term, uint64(1))
	assert.GreaterOrEqual(t, st.CommitIndex, uint64(1))
	require.Len(t, st.Members, 3)
	if assert.NotNil(t, st.Log, "/status describes the log") {
		assert.NotEmpty(t, st.Log.Segments, "the log's segments on disk")
		assert.Positive(t, st.Log.Bytes)
		assert.GreaterOrEqual(t, st.Log.Entries, int64(1))
	}
	for i, md := range st.Members {
		assert.Equal(t, "ACTIVE", md.Type)
		assert.Equal(t, addrs[md.ID-1], md.Addr, "member %d", i)
		if assert.NotNil(t, md.MatchIndex, "the leader reports each member's progress") {
			assert.GreaterOrEqual(t, *md.MatchIndex, uint64(1))
		}
	}
	require.Eventually(t, func() bool {
		s := members[0].status(t)
		return s.AppliedIndex >= st.CommitIndex
	}, 10*time.Second, 20*time.Millisecond)

	// /metrics, from a dedicated registry.
	code, body, err := httpGet("http://" + leader.http + "/metrics")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`copycat_role{role="leader"} 1`, `copycat_role{role="follower"} 0`, "copycat_term ", "copycat_commit_index ",
		"copycat_applied_index ", "copycat_sessions 0", "copycat_resources 0", `copycat_members{type="ACTIVE"} 3`,
		"copycat_log_compaction_index ", "copycat_log_bytes ", `copycat_snapshots_total{direction="sent"} 0`,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, "go_goroutines", "dedicated registry, no default collectors")

	// A new member with an empty data directory waits to be added: 503.
	newbie := &member{id: 4, addr: addrs[3], http: https[3], dir: filepath.Join(dir, "m4")}
	newbie.start(t)
	require.Eventually(t, func() bool {
		code, body, err := httpGet("http://" + newbie.http + "/health")
		return err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "knows no leader")
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, newbie.stop(t))
	assert.Contains(t, newbie.out.String(), "waiting for the leader to add it")

	// Graceful stop of the leader (what SIGTERM does): leadership moves, exit status nil.
	oldTerm := st.Term
	require.NoError(t, leader.stop(t), leader.out.String())
	assert.NotContains(t, leader.out.String(), "transfer before shutdown failed")
	var others []*member
	for _, m := range members {
		if m != leader {
			others = append(others, m)
		}
	}
	require.Eventually(t, func() bool {
		s := others[0].status(t)
		return s.Leader != nil && s.Leader.ID != leader.id && s.Term > oldTerm
	}, 10*time.Second, 20*time.Millisecond)
	for _, m := range others {
		m.waitHealthy(t)
	}

	// Another member's data directory, or this one under another cluster, is refused.
	spare, err := freeAddrs(1)
	require.NoError(t, err)
	var out syncBuffer
	err = runServerCmd(context.Background(), &out, "--id", fmt.Sprint(leader.id), "--listen", spare[0],
		"--data", others[0].dir, "--cluster-id", "test-cluster")
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("belongs to member %d of cluster \"test-cluster\", not member %d", others[0].id, leader.id))
	err = runServerCmd(context.Background(), &out, "--id", fmt.Sprint(leader.id), "--listen", spare[0],
		"--data", leader.dir, "--cluster-id", "other-cluster")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `cluster "test-cluster", not member`)

	// Restart from the data directory, without --bootstrap.
	leader.start(t)
	leader.waitHealthy(t)
	require.Eventually(t, func() bool {
		s := leader.status(t)
		return len(s.Members) == 3 && s.AppliedIndex >= st.CommitIndex
	}, 10*time.Second, 20*time.Millisecond)

	for _, m := range members {
		require.NoError(t, m.stop(t), m.out.String())
	}
}

// A start that fails (here: the port is taken) does not claim the data
// directory; a damaged identity file is refused.
func TestServerDataDirIdentity(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	var out syncBuffer
	err = runServerCmd(context.Background(), &out, "--id", "1", "--listen", ln.Addr().String(), "--data", dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "member 1 cannot start")
	_, err = os.Stat(filepath.Join(dir, identityFile))
	assert.True(t, os.IsNotExist(err), "a failed start must not record an identity")

	require.NoError(t, os.WriteFile(filepath.Join(dir, identityFile), []byte("{not json"), 0o644))
	err = runServerCmd(context.Background(), &out, "--id", "1", "--listen", "127.0.0.1:1", "--data", dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has a damaged "+identityFile)
}
