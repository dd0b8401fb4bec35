package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCluster runs `copycat cluster args...` in-process against the test
// cluster and returns what it printed.
func runCluster(t *testing.T, members []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out syncBuffer
	root := newRoot()
	all := append([]string{"cluster"}, args...)
	all = append(all, "--members", strings.Join(members, ","), "--cluster-id", "test-cluster")
	root.SetArgs(all)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// clusterJSON runs `cluster status --json` and decodes it.
func clusterJSON(t *testing.T, members []string) (statusJSON, error) {
	t.Helper()
	out, err := runCluster(t, members, "status", "--json", "--timeout", "2s")
	if err != nil {
		return statusJSON{}, err
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return statusJSON{}, fmt.Errorf("%w: %s", err, out)
	}
	return st, nil
}

func jsonMember(st statusJSON, id uint64) (statusMemberJSON, bool) {
	for _, m := range st.Members {
		if m.ID == id {
			return m, true
		}
	}
	return statusMemberJSON{}, false
}

// startTestCluster starts three in-process members with --bootstrap and
// waits until they are healthy. It returns them and spare addresses
// (listen, http) for two more.
func startTestCluster(t *testing.T) (members []*member, spare [][2]string) {
	t.Helper()
	addrs, err := freeAddrs(5)
	require.NoError(t, err)
	https, err := freeAddrs(5)
	require.NoError(t, err)
	dir := t.TempDir()
	var boot []string
	for i := range 3 {
		members = append(members, &member{id: uint64(i + 1), addr: addrs[i], http: https[i], dir: filepath.Join(dir, fmt.Sprint("m", i+1))})
		boot = append(boot, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	for _, m := range members {
		m.start(t, "--bootstrap", strings.Join(boot, ","))
	}
	for _, m := range members {
		m.waitHealthy(t)
	}
	for i := 3; i < 5; i++ {
		spare = append(spare, [2]string{addrs[i], https[i]})
	}
	return members, spare
}

func addrsOf(ms ...*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.addr)
	}
	return out
}

var leaderRow = regexp.MustCompile(`(?m)^(\d+) \*\s+(\S+)\s+ACTIVE\s+leader\s`)

func TestClusterCommands(t *testing.T) {
	members, _ := startTestCluster(t)
	all := addrsOf(members...)

	// The table names the leader, marks its row and shows every member.
	var out string
	require.Eventually(t, func() bool {
		var err error
		out, err = runCluster(t, all[:1], "status")
		return err == nil && leaderRow.MatchString(out)
	}, 10*time.Second, 20*time.Millisecond)
	row := leaderRow.FindStringSubmatch(out)
	lead := row[1]
	assert.Contains(t, out, fmt.Sprintf("leader %s (%s)", lead, row[2]))
	assert.Regexp(t, `^term \d+  leader \d+ \(\S+\)  commit \d+  applied \d+  sessions 0  resources 0  \(as seen by member \d+, leader\)\n`, out)
	assert.Contains(t, out, "ID   ADDRESS")
	for _, m := range members {
		assert.Regexp(t, fmt.Sprintf(`(?m)^%d( \*)?\s+%s\s+ACTIVE\s+(leader|follower)\s+\d+\s+\d+\s+`, m.id, regexp.QuoteMeta(m.addr)), out)
	}

	st, err := clusterJSON(t, all)
	require.NoError(t, err)
	require.NotNil(t, st.Leader)
	assert.Equal(t, lead, fmt.Sprint(st.Leader.ID))
	assert.Equal(t, "test-cluster", st.ClusterID)
	assert.Len(t, st.Members, 3)
	for _, m := range st.Members {
		if assert.NotNil(t, m.MatchIndex, "the leader's view has progress") {
			assert.GreaterOrEqual(t, *m.MatchIndex, uint64(1))
		}
	}

	// Transfer leadership to another member, then to any.
	var to uint64
	for _, m := range members {
		if fmt.Sprint(m.id) != lead {
			to = m.id
		}
	}
	out, err = runCluster(t, all, "transfer", fmt.Sprint(to))
	require.NoError(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("member %d (", to))
	out, err = runCluster(t, all, "transfer", "--json")
	require.NoError(t, err, out)
	var tr struct {
		Transferred bool   `json:"transferred"`
		Leader      uint64 `json:"leader"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &tr), out)
	assert.True(t, tr.Transferred)
	assert.NotEqual(t, to, tr.Leader)

	// Refusals and usage errors: one sentence, an error (exit status 1).
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"remove", "99"}, "cannot remove member 99: member 99 is not in the cluster"},
		{[]string{"promote", "1"}, "cannot promote member 1: member 1 is already ACTIVE"},
		{[]string{"add", "2", "127.0.0.1:1"}, "cannot add member 2: member 2 is already in the cluster, ACTIVE at"},
		{[]string{"add", "9", "127.0.0.1:1", "--type", "active"}, "--type must be passive or reserve"},
		{[]string{"add", "9", "nowhere"}, `address "nowhere" is not host:port`},
		{[]string{"remove", "zero"}, `member ID "zero" is not a positive integer`},
		{[]string{"remove", "0"}, `member ID "0" is not a positive integer`},
		{[]string{"remove"}, "usage: copycat cluster remove ID"},
		{[]string{"status", "extra"}, "usage: copycat cluster status"},
		{[]string{"transfer", "99"}, "cannot transfer leadership to member 99: member 99 is not in the cluster"},
		{[]string{"bogus"}, `unknown command "bogus"`},
	} {
		out, err := runCluster(t, all, tc.args...)
		require.Error(t, err, "%v: %s", tc.args, out)
		assert.Contains(t, err.Error(), tc.want, tc.args)
		assert.NotContains(t, err.Error(), "\n", tc.args)
		assert.Equal(t, exitFailure, exitCode(err))
	}

	// A promotion that cannot happen in time says so; so does a cluster
	// nobody answers for, and one of another name.
	out, err = runCluster(t, all, "add", "9", "127.0.0.1:1")
	require.NoError(t, err, out)
	assert.Equal(t, "member 9 added as PASSIVE at 127.0.0.1:1\n", out)
	_, err = runCluster(t, all, "promote", "9")
	require.Error(t, err)
	assert.Regexp(t, `^cannot promote member 9: member 9 has 0 of the leader's \d+ committed entries; retry once it has caught up \(or use --wait\)$`, err.Error())
	_, err = runCluster(t, all, "promote", "9", "--wait", "--timeout", "300ms")
	require.Error(t, err)
	assert.Regexp(t, `^cannot promote member 9 within 300ms: member 9 has 0 of`, err.Error())
	out, err = runCluster(t, all, "remove", "9")
	require.NoError(t, err, out)

	spare, err := freeAddrs(1)
	require.NoError(t, err)
	_, err = runCluster(t, spare, "status", "--timeout", "300ms")
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("cannot connect to the cluster: no answer from the cluster at %s within 300ms (last error: ", spare[0]))
	root := newRoot()
	root.SetArgs([]string{"cluster", "status", "--members", all[0], "--cluster-id", "other"})
	var sink syncBuffer
	root.SetOut(&sink)
	root.SetErr(&sink)
	err = root.ExecuteContext(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `a member refused the connection (cluster ID "other" does not match`)
}

// A member started with --join is added, catches up and becomes ACTIVE;
// with --passive it stays PASSIVE. Restarted on its data directory it
// ignores --join.
func TestServerJoin(t *testing.T) {
	members, spare := startTestCluster(t)
	all := addrsOf(members...)
	dir := t.TempDir()

	joiner := &member{id: 4, addr: spare[0][0], http: spare[0][1], dir: filepath.Join(dir, "m4")}
	joiner.start(t, "--join", strings.Join(all[1:], ","))
	joiner.waitHealthy(t)
	require.Eventually(t, func() bool {
		st, err := clusterJSON(t, all)
		if err != nil {
			return false
		}
		m, ok := jsonMember(st, 4)
		return ok && m.Type == "ACTIVE" && m.Addr == joiner.addr
	}, 20*time.Second, 50*time.Millisecond, "member 4 ACTIVE")
	assert.Contains(t, joiner.out.String(), "added to the cluster as PASSIVE")
	require.Eventually(t, func() bool { return strings.Contains(joiner.out.String(), "caught up and promoted to ACTIVE") },
		5*time.Second, 20*time.Millisecond)

	passive := &member{id: 5, addr: spare[1][0], http: spare[1][1], dir: filepath.Join(dir, "m5")}
	passive.start(t, "--join", all[0], "--passive")
	passive.waitHealthy(t)
	require.Eventually(t, func() bool {
		st, err := clusterJSON(t, all)
		if err != nil || st.Role != "leader" {
			return false
		}
		m, ok := jsonMember(st, 5)
		return ok && m.Lag != nil && *m.Lag == 0 && m.MatchIndex != nil && *m.MatchIndex > 0
	}, 20*time.Second, 50*time.Millisecond, "member 5 caught up")
	st, err := clusterJSON(t, all)
	require.NoError(t, err)
	m, _ := jsonMember(st, 5)
	assert.Equal(t, "PASSIVE", m.Type, "--passive keeps it PASSIVE once caught up")
	assert.NotContains(t, passive.out.String(), "promoted")

	// Restart member 4 from its data directory: --join is ignored.
	require.NoError(t, joiner.stop(t))
	joiner.start(t, "--join", all[0])
	joiner.waitHealthy(t)
	assert.Contains(t, joiner.out.String(), "ignoring --join and restarting from it")
	assert.NotContains(t, joiner.out.String(), "joining the cluster")
	st, err = clusterJSON(t, all)
	require.NoError(t, err)
	assert.Len(t, st.Members, 5)

	// An ID the cluster gives another address is refused, in one sentence.
	other, err := freeAddrs(1)
	require.NoError(t, err)
	var out syncBuffer
	err = runServerCmd(context.Background(), &out, "--id", "2", "--listen", other[0], "--data", filepath.Join(dir, "dup"),
		"--cluster-id", "test-cluster", "--join", all[0])
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("member 2 cannot join: the cluster already has a member 2 at %s, not %s", all[1], other[0]))
	assert.NotContains(t, err.Error(), "\n")

	for _, m := range append(members, joiner, passive) {
		require.NoError(t, m.stop(t), m.out.String())
	}
}

func TestServerJoinFlagErrors(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base := []string{"--id", "4", "--listen", "127.0.0.1:7004", "--data", data}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"join and bootstrap", []string{"--join", "127.0.0.1:7001", "--bootstrap", "4=127.0.0.1:7004"}, "--join and --bootstrap cannot be used together"},
		{"passive without join", []string{"--passive"}, "--passive only applies with --join"},
		{"join garbage", []string{"--join", "127.0.0.1:7001,nowhere"}, `--join entry "nowhere" is not a host:port address`},
		{"join empty", []string{"--join", ","}, "--join needs the address of at least one member"},
		{"join timeout", []string{"--join", "127.0.0.1:7001", "--join-timeout", "0s"}, "--join-timeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			err := runServerCmd(context.Background(), &out, append(append([]string{}, base...), tc.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}

	// Nobody answers at --join: the member gives up after --join-timeout
	// and does not claim the data directory.
	dead, err := freeAddrs(2)
	require.NoError(t, err)
	var out syncBuffer
	began := time.Now()
	err = runServerCmd(context.Background(), &out, "--id", "4", "--listen", dead[1], "--data", data,
		"--join", dead[0], "--join-timeout", "300ms")
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("member 4 cannot join the cluster at %s: cannot reach the cluster within --join-timeout 300ms (last error: ", dead[0]))
	assert.Less(t, time.Since(began), 5*time.Second)
	_, err = os.Stat(filepath.Join(data, identityFile))
	assert.True(t, os.IsNotExist(err), "a failed join records no identity")
}
