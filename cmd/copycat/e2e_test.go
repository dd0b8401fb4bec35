package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end test runs the copycat binary, built from this package, as
// separate processes: three members on loopback, `copycat cluster ...`
// against them, a leader killed with SIGKILL, a fourth member joining with
// --join and being removed, the killed member restarting from its data
// directory, and two `copycat lock acquire` processes contending for a lock.

const e2eCluster = "e2e"

// proc is one running copycat process.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // set before done closes
}

// startProc starts `bin args...`; it is killed at the end of the test if
// still running.
func startProc(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start(), name)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("--- %s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits (bounded) for the process to exit.
func (p *proc) signal(sig os.Signal) error {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig), p.name)
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s did not exit after %v; stderr:\n%s", p.name, sig, p.stderr.String())
		return nil
	}
}

// e2eMember is one member process and how to start it again.
type e2eMember struct {
	id               uint64
	addr, http, data string
	p                *proc
}

func (m *e2eMember) start(t *testing.T, bin string, extra ...string) {
	t.Helper()
	args := append([]string{"server", "--id", fmt.Sprint(m.id), "--listen", m.addr, "--data", m.data,
		"--http", m.http, "--cluster-id", e2eCluster}, extra...)
	m.p = startProc(t, bin, fmt.Sprintf("member %d", m.id), args...)
}

// waitHealthy waits until the member's /health answers 200 (it runs and
// knows a leader).
func (m *e2eMember) waitHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("member %d healthy", m.id), func() (bool, string) {
		if m.p.exited() {
			t.Fatalf("member %d exited: %v\n%s", m.id, m.p.err, m.p.stderr.String())
		}
		code, body, err := httpGet("http://" + m.http + "/health")
		return err == nil && code == http.StatusOK, fmt.Sprint(code, " ", body, " ", err)
	})
}

// waitFor polls cond every 50 ms until it holds, failing the test with the
// last observation after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// copycatRun runs a short-lived copycat command and returns its stdout,
// and its stderr in the error if it fails.
func copycatRun(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %w: %s", args, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func clusterArgs(members []*e2eMember, args ...string) []string {
	var addrs []string
	for _, m := range members {
		addrs = append(addrs, m.addr)
	}
	return append(append([]string{"cluster"}, args...), "--members", strings.Join(addrs, ","), "--cluster-id", e2eCluster, "--timeout", "3s")
}

// tableLeader returns the leader's ID the status table names, or 0.
func tableLeader(out string) uint64 {
	m := leaderRow.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	return id
}

func statusOfCluster(bin string, members []*e2eMember) (statusJSON, error) {
	out, err := copycatRun(bin, clusterArgs(members, "status", "--json")...)
	if err != nil {
		return statusJSON{}, err
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return statusJSON{}, fmt.Errorf("%w: %s", err, out)
	}
	return st, nil
}

var tokenLine = regexp.MustCompile(`^(\d+)\n`)

func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the end-to-end test of the built copycat binary in -short mode (it builds the binary and runs 4 member processes)")
	}
	began := time.Now()
	bin := filepath.Join(t.TempDir(), "copycat")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(began).Round(time.Millisecond))
	began = time.Now()

	addrs, err := freeAddrs(4)
	require.NoError(t, err)
	https, err := freeAddrs(4)
	require.NoError(t, err)
	dir := t.TempDir()
	var members []*e2eMember
	var boot []string
	for i := range 4 {
		members = append(members, &e2eMember{id: uint64(i + 1), addr: addrs[i], http: https[i], data: filepath.Join(dir, fmt.Sprint("m", i+1))})
		if i < 3 {
			boot = append(boot, fmt.Sprintf("%d=%s", i+1, addrs[i]))
		}
	}
	founders, joiner := members[:3], members[3]
	for _, m := range founders {
		m.start(t, bin, "--bootstrap", strings.Join(boot, ","))
	}
	for _, m := range founders {
		m.waitHealthy(t)
	}

	// The status table names a leader.
	var out string
	var lead uint64
	waitFor(t, 10*time.Second, "the status table to name a leader", func() (bool, string) {
		out, err = copycatRun(bin, clusterArgs(founders, "status")...)
		lead = tableLeader(out)
		return err == nil && lead != 0, fmt.Sprint(out, err)
	})
	assert.Regexp(t, fmt.Sprintf(`^term \d+  leader %d \(%s\)  `, lead, regexp.QuoteMeta(members[lead-1].addr)), out)
	t.Logf("leader: member %d", lead)

	// kill -9 the leader; the survivors elect another.
	killed := members[lead-1]
	require.NoError(t, killed.p.cmd.Process.Kill())
	<-killed.p.done
	killedAt := time.Now()
	var survivors []*e2eMember
	for _, m := range founders {
		if m != killed {
			survivors = append(survivors, m)
		}
	}
	var newLead uint64
	waitFor(t, 15*time.Second, "a new leader among the survivors", func() (bool, string) {
		out, err = copycatRun(bin, clusterArgs(survivors, "status")...)
		newLead = tableLeader(out)
		return err == nil && newLead != 0 && newLead != killed.id, fmt.Sprint(out, err)
	})
	t.Logf("new leader: member %d, seen %v after the kill", newLead, time.Since(killedAt).Round(time.Millisecond))

	// A fourth member joins through the survivors and becomes ACTIVE.
	joiner.start(t, bin, "--join", survivors[0].addr+","+survivors[1].addr)
	waitFor(t, 20*time.Second, "member 4 ACTIVE", func() (bool, string) {
		st, err := statusOfCluster(bin, survivors)
		if err != nil {
			return false, err.Error()
		}
		m, ok := jsonMember(st, joiner.id)
		return ok && m.Type == "ACTIVE", fmt.Sprintf("%+v", st.Members)
	})
	joiner.waitHealthy(t)

	// Remove it, and stop it.
	out, err = copycatRun(bin, clusterArgs(survivors, "remove", "4")...)
	require.NoError(t, err)
	assert.Equal(t, "member 4 removed\n", out)
	st, err := statusOfCluster(bin, survivors)
	require.NoError(t, err)
	_, ok := jsonMember(st, joiner.id)
	assert.False(t, ok, "member 4 is gone: %+v", st.Members)
	assert.NoError(t, joiner.p.signal(syscall.SIGTERM), "SIGTERM stops a member with status 0")

	// The killed member restarts from its data directory and catches up.
	killed.start(t, bin)
	killed.waitHealthy(t)
	waitFor(t, 15*time.Second, "the restarted member to catch up", func() (bool, string) {
		st, err := statusOfCluster(bin, founders)
		if err != nil {
			return false, err.Error()
		}
		m, ok := jsonMember(st, killed.id)
		return st.Role == "leader" && ok && m.Type == "ACTIVE" && m.Lag != nil && *m.Lag == 0, fmt.Sprintf("%+v", st)
	})
	own, err := copycatRun(bin, "cluster", "status", "--members", killed.addr, "--cluster-id", e2eCluster, "--timeout", "3s")
	require.NoError(t, err)
	assert.NotZero(t, tableLeader(own), "seen from the restarted member: %s", own)
	t.Logf("join, remove and restart took %v", time.Since(killedAt).Round(time.Millisecond))

	// Two `lock acquire` processes: the second waits until the first is
	// interrupted, then holds the lock with a larger fencing token.
	lockArgs := func() []string {
		return append([]string{"lock", "acquire", "e2e-lock"}, clusterArgs(founders)[1:]...)
	}
	first := startProc(t, bin, "first lock holder", lockArgs()...)
	var tok1 uint64
	waitFor(t, 10*time.Second, "the first holder's token", func() (bool, string) {
		m := tokenLine.FindStringSubmatch(first.stdout.String())
		if m != nil {
			tok1, _ = strconv.ParseUint(m[1], 10, 64)
		}
		return m != nil, first.stdout.String() + first.stderr.String()
	})
	second := startProc(t, bin, "second lock holder", lockArgs()...)
	// A negative check needs a wait: the second holder must print nothing
	// while the first holds the lock. It opens its session meanwhile.
	time.Sleep(time.Second)
	assert.Empty(t, second.stdout.String(), "the second holder waits")
	assert.False(t, second.exited(), "the second holder waits: %s", second.stderr.String())
	assert.NoError(t, first.signal(os.Interrupt), "an interrupted holder releases the lock and exits 0: %s", first.stderr.String())
	var tok2 uint64
	waitFor(t, 10*time.Second, "the second holder's token", func() (bool, string) {
		m := tokenLine.FindStringSubmatch(second.stdout.String())
		if m != nil {
			tok2, _ = strconv.ParseUint(m[1], 10, 64)
		}
		return m != nil, second.stdout.String() + second.stderr.String()
	})
	assert.Greater(t, tok2, tok1, "fencing tokens increase")
	assert.NoError(t, second.signal(os.Interrupt))

	for _, m := range founders {
		assert.NoError(t, m.p.signal(syscall.SIGTERM), "member %d", m.id)
	}
	t.Logf("end to end in %v after the build", time.Since(began).Round(time.Millisecond))
}
