package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
)

// shellCluster is three members on loopback TCP hosting the built-ins.
type shellCluster struct {
	members string // the --members value
	servers []*server.Server
	cli     *client.Client
}

// client returns the test's own client of the cluster (for checks the
// commands cannot make), connected on first use and closed on cleanup.
func (c *shellCluster) client(t *testing.T) *client.Client {
	t.Helper()
	if c.cli == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cli, err := client.Connect(ctx, strings.Split(c.members, ","))
		require.NoError(t, err)
		t.Cleanup(func() { cli.Close() })
		c.cli = cli
	}
	return c.cli
}

// startShellCluster starts a 3-member cluster, stopped on cleanup, and
// waits until it has a leader.
func startShellCluster(t *testing.T, configure ...func(*server.Config)) *shellCluster {
	t.Helper()
	dir := t.TempDir()
	var (
		lns     []net.Listener
		members []raft.Member
		addrs   []string
	)
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
		members = append(members, raft.Member{ID: uint64(i + 1), Type: raft.Active, Addr: ln.Addr().String()})
	}
	c := &shellCluster{members: strings.Join(addrs, ",")}
	for i, ln := range lns {
		cfg := server.Config{
			ID: uint64(i + 1), ClusterID: defaultClusterID, Addr: addrs[i], Listener: ln,
			DataDir: filepath.Join(dir, fmt.Sprint("member-", i+1)), NoSync: true,
		}
		for _, f := range configure {
			f(&cfg)
		}
		srv, err := server.New(cfg, builtins...)
		require.NoError(t, err)
		require.NoError(t, srv.Bootstrap(members))
		c.servers = append(c.servers, srv)
		t.Cleanup(func() { srv.Stop() })
	}
	require.Eventually(t, func() bool {
		for _, s := range c.servers {
			if s.IsLeader() {
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no leader")
	return c
}

// shellArgv puts the connection flags after the group and subcommand, before
// the arguments (some commands read everything after NAME as arguments).
func shellArgv(members string, args []string) []string {
	n := min(2, len(args))
	argv := append([]string{}, args[:n]...)
	argv = append(argv, "--members", members, "--timeout", "10s")
	return append(argv, args[n:]...)
}

// runShell runs `copycat args...` against members to completion and returns
// its standard output.
func runShell(t *testing.T, members string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(shellArgv(members, args))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// mustShell is runShell that must succeed.
func mustShell(t *testing.T, members string, args ...string) string {
	t.Helper()
	out, err := runShell(t, members, args...)
	require.NoError(t, err, "copycat %s", strings.Join(args, " "))
	return out
}

// bgShell is a command running in the background until its context is
// cancelled, as SIGINT would.
type bgShell struct {
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func startShell(t *testing.T, members string, args ...string) *bgShell {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bgShell{out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	root := newRoot()
	root.SetArgs(shellArgv(members, args))
	root.SetOut(b.out)
	root.SetErr(&syncBuffer{})
	go func() { b.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
		}
	})
	return b
}

// waitLine waits until the command has printed a first line and returns it.
func (b *bgShell) waitLine(t *testing.T) string {
	t.Helper()
	var line string
	require.Eventually(t, func() bool {
		s := b.out.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return false
		}
		line = s[:i]
		return true
	}, 20*time.Second, 5*time.Millisecond, "no output")
	return line
}

// waitOutput waits until the output contains want.
func (b *bgShell) waitOutput(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(b.out.String(), want) }, 20*time.Second, 5*time.Millisecond,
		"output never contained %q", want)
}

// stop interrupts the command and returns its error.
func (b *bgShell) stop(t *testing.T) error {
	t.Helper()
	b.cancel()
	return b.wait(t)
}

// wait waits for the command to end by itself.
func (b *bgShell) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err // for Cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("command did not end")
		return nil
	}
}

// running reports whether the command has not ended.
func (b *bgShell) running() bool {
	select {
	case err := <-b.done:
		b.done <- err
		return false
	default:
		return true
	}
}

func parseToken(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	require.NoError(t, err, "not a number: %q", s)
	return n
}

// Mistakes on the command line get one sentence, before any connection.
func TestShellUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"too few arguments", []string{"map", "get", "m"}, "usage: copycat map get NAME KEY"},
		{"too many arguments", []string{"lock", "holder", "a", "b"}, "usage: copycat lock holder NAME"},
		{"optional argument", []string{"map", "watch", "m", "k", "extra"}, "usage: copycat map watch NAME [KEY]"},
		{"unknown subcommand", []string{"map", "frobnicate"}, `unknown command "frobnicate" for "copycat map"`},
		{"not a number", []string{"long", "add", "n", "ten"}, `DELTA "ten" is not a 64-bit integer`},
		{"negative ttl", []string{"map", "put", "m", "k", "v", "--ttl", "-1s"}, "--ttl must not be negative"},
		{"negative wait", []string{"lock", "try", "l", "--wait", "-1s"}, "--wait must not be negative"},
		{"unknown flag", []string{"map", "get", "m", "k", "--frob"}, "unknown flag: --frob"},
		{"bad members", []string{"map", "get", "m", "k", "--members", "nowhere"}, `--members entry "nowhere" is not a host:port address`},
		{"empty members", []string{"map", "get", "m", "k", "--members", " , "}, "--members is empty"},
		{"zero timeout", []string{"map", "get", "m", "k", "--timeout", "0s"}, "--timeout must be positive"},
		{"zero session timeout", []string{"map", "get", "m", "k", "--session-timeout", "0s"}, "--session-timeout must be positive"},
		{"empty cluster id", []string{"map", "get", "m", "k", "--cluster-id", ""}, "--cluster-id must not be empty"},
		{"partial TLS", []string{"map", "get", "m", "k", "--tls-cert", "c.pem"}, "go together"},
		{"missing TLS files", []string{"map", "get", "m", "k", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"}, "cannot load the TLS certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			root := newRoot()
			root.SetArgs(tc.args)
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			began := time.Now()
			err := root.ExecuteContext(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.Equal(t, exitFailure, exitCode(err))
			assert.Less(t, time.Since(began), 5*time.Second, "refused before connecting")
		})
	}
}

// The parent commands print their help; `copycat lock` explains why there
// is no release command.
func TestShellHelp(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"lock"})
	var out bytes.Buffer
	root.SetOut(&out)
	require.NoError(t, root.Execute())
	assert.Contains(t, out.String(), `There is no "lock release NAME TOKEN"`)
	assert.Contains(t, out.String(), "--members")
	for _, group := range []string{"lock", "map", "election", "value", "long", "queue", "set", "group"} {
		cmd, _, err := newRoot().Find([]string{group})
		require.NoError(t, err)
		assert.Equal(t, group, cmd.Name())
		assert.NotNil(t, cmd.PersistentFlags().Lookup("members"), group)
	}
}

// A cluster nobody answers for fails within --timeout with the reason of
// the last attempt, whether connections are refused or hang.
func TestShellUnreachable(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	go func() { // accept and say nothing
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusedAddr := refused.Addr().String()
	refused.Close()

	for _, tc := range []struct {
		name, addr, want string
	}{
		{"refused", refusedAddr, "connection refused"},
		{"silent", silent.Addr().String(), "cannot reach the cluster at " + silent.Addr().String() + " within 500ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			root := newRoot()
			root.SetArgs([]string{"map", "get", "m", "k", "--members", tc.addr, "--timeout", "500ms"})
			root.SetOut(&bytes.Buffer{})
			root.SetErr(&bytes.Buffer{})
			began := time.Now()
			err := root.ExecuteContext(ctx)
			took := time.Since(began)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "cannot reach the cluster at "+tc.addr+" within 500ms")
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
			assert.GreaterOrEqual(t, took, 500*time.Millisecond)
			assert.Less(t, took, 5*time.Second, "bounded by --timeout")
		})
	}
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, exitFailure, exitCode(fmt.Errorf("plain")))
	assert.Equal(t, exitNotDone, exitCode(notDone("lock %q not granted", "x")))
	assert.Equal(t, exitFailure, exitCode(absent("key %q missing", "k")))
	assert.Equal(t, exitNotDone, exitCode(fmt.Errorf("wrapped: %w", notDone("no"))))
}

func TestShellArgsCounts(t *testing.T) {
	tests := []struct {
		use  string
		n    int
		fail bool
	}{
		{"get NAME KEY", 2, false},
		{"get NAME KEY", 1, true},
		{"get NAME KEY", 3, true},
		{"watch NAME [KEY]", 1, false},
		{"watch NAME [KEY]", 2, false},
		{"watch NAME [KEY]", 3, true},
		{"watch NAME [KEY]", 0, true},
	}
	for _, tc := range tests {
		cmd := newRoot()
		cmd.Use = tc.use
		err := shellArgs(cmd, make([]string, tc.n))
		assert.Equal(t, tc.fail, err != nil, "%s with %d args: %v", tc.use, tc.n, err)
	}
}
