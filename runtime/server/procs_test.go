//go:build unix

package server_test

// Real member processes for the process-level tests and the cluster
// benchmark. The test binary doubles as the member program: TestMain sees
// COPYCAT_MEMBER_ID in its environment and runs one member instead of the
// tests (so the member hosts the test-only resource types too, and no
// separate `go build` is needed). The parent talks to a member three ways:
// through the client protocol on its address, through a pinned raw query
// (pinnedGet) and through a small HTTP status endpoint whose address the
// member prints on stdout once it has started.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/internal/counter"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
	"github.com/copycat-go/copycat/runtime/transport"
)

// Environment of a member process.
const (
	envMemberID    = "COPYCAT_MEMBER_ID"         // this member's ID; its presence selects member mode
	envMembers     = "COPYCAT_MEMBER_MEMBERS"    // founding members: "1=127.0.0.1:7001,2=...,3=..."
	envMemberDir   = "COPYCAT_MEMBER_DIR"        // data directory
	envCluster     = "COPYCAT_MEMBER_CLUSTER"    // cluster ID
	envNoSync      = "COPYCAT_MEMBER_NOSYNC"     // "1": fsync off (never set by the tests here)
	envWatchStdin  = "COPYCAT_MEMBER_WATCH"      // "1": exit when stdin closes (the parent died)
	envLogLevel    = "COPYCAT_MEMBER_LOG"        // slog level for stderr: debug, info, warn (default), error
	envCPUProfile  = "COPYCAT_MEMBER_CPUPROFILE" // write a CPU profile here, stopped on SIGTERM/SIGINT
	envAllocsProf  = "COPYCAT_MEMBER_ALLOCSPROF" // write an allocs profile here on SIGTERM/SIGINT
	envMutexProf   = "COPYCAT_MEMBER_MUTEXPROF"  // write a mutex contention profile here on SIGTERM/SIGINT
	readyLinePrefx = "copycat-member ready status="
)

func TestMain(m *testing.M) {
	if os.Getenv(envMemberID) != "" {
		os.Exit(runMember())
	}
	os.Exit(m.Run())
}

// memberStatus is what a member's /status endpoint answers.
type memberStatus struct {
	ID        uint64 `json:"id"`
	State     string `json:"state"`
	Lead      uint64 `json:"lead"`
	Term      uint64 `json:"term"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	LastIndex uint64 `json:"last_index"`
	Sessions  int    `json:"sessions"`
}

func parseMembers(s string) ([]raft.Member, error) {
	var out []raft.Member
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("bad member %q", part)
		}
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad member ID %q", id)
		}
		out = append(out, raft.Member{ID: n, Addr: addr})
	}
	return out, nil
}

// runMember runs one member until SIGTERM/SIGINT (clean stop, profiles
// written, exit 0) or until its stdin closes when envWatchStdin is set.
func runMember() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "copycat-member:", err)
		return 2
	}
	id, err := strconv.ParseUint(os.Getenv(envMemberID), 10, 64)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", envMemberID, err))
	}
	members, err := parseMembers(os.Getenv(envMembers))
	if err != nil {
		return fail(err)
	}
	var addr string
	for _, m := range members {
		if m.ID == id {
			addr = m.Addr
		}
	}
	level := slog.LevelWarn
	if l := os.Getenv(envLogLevel); l != "" {
		if err := level.UnmarshalText([]byte(l)); err != nil {
			return fail(fmt.Errorf("%s: %w", envLogLevel, err))
		}
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	var stopProfile func()
	if p := os.Getenv(envCPUProfile); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	if os.Getenv(envMutexProf) != "" {
		goruntime.SetMutexProfileFraction(5)
	}

	srv, err := server.New(server.Config{
		ID: id, ClusterID: os.Getenv(envCluster), Addr: addr, DataDir: os.Getenv(envMemberDir),
		NoSync: os.Getenv(envNoSync) == "1", Logger: logger,
	}, counter.Type, benchKVType)
	if err != nil {
		return fail(err)
	}
	if err := srv.Bootstrap(members); err != nil { // on a non-empty log: a plain restart
		return fail(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		st := srv.Status()
		_ = json.NewEncoder(w).Encode(memberStatus{
			ID: st.ID, State: st.SoftState.State.String(), Lead: st.SoftState.Lead, Term: st.HardState.Term,
			Commit: st.HardState.Commit, Applied: st.Applied, LastIndex: st.LastIndex, Sessions: srv.Sessions(),
		})
	})
	go func() { _ = http.Serve(ln, mux) }()
	fmt.Printf("%s%s\n", readyLinePrefx, ln.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	orphaned := make(chan struct{})
	if os.Getenv(envWatchStdin) == "1" {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(orphaned)
		}()
	}
	select {
	case <-sigs:
	case <-orphaned:
		// The parent is gone: nobody is left to read a profile or wait for
		// a clean stop.
		return 3
	}
	err = srv.Stop()
	if stopProfile != nil {
		stopProfile()
	}
	for env, name := range map[string]string{envAllocsProf: "allocs", envMutexProf: "mutex"} {
		if p := os.Getenv(env); p != "" {
			if f, ferr := os.Create(p); ferr == nil {
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintln(os.Stderr, "copycat-member: stop:", err)
	}
	return 0
}

// ---- the parent's side ----

// memberProc is one member process.
type memberProc struct {
	id      uint64
	addr    string
	dir     string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	status  string        // address of the status endpoint
	exited  chan struct{} // closed when the current process has exited
	exitErr error
	starts  int
}

// procCluster is a cluster of member processes on loopback.
type procCluster struct {
	t       testing.TB
	id      string
	members []raft.Member
	procs   map[uint64]*memberProc
	env     func(id uint64, start int) []string // extra environment per start
	http    *http.Client
}

// errNoSpawn marks failures to start a process at all, which skip the tests.
var errNoSpawn = errors.New("cannot start member processes")

// loopbackAddrs returns n free addresses, on 127.0.0.1, .2, .3... when
// those can be bound, else all on 127.0.0.1.
func loopbackAddrs(n int) ([]string, error) {
	out := make([]string, 0, n)
	distinct := true
	for i := 1; i <= n; i++ {
		host := "127.0.0.1"
		if distinct {
			host = fmt.Sprintf("127.0.0.%d", i)
		}
		ln, err := net.Listen("tcp", host+":0")
		if err != nil && distinct {
			distinct = false
			host = "127.0.0.1"
			ln, err = net.Listen("tcp", host+":0")
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ln.Addr().String())
		ln.Close()
	}
	return out, nil
}

// newProcCluster starts n member processes with data in temporary
// directories and waits until one of them leads. Every process is killed by
// t.Cleanup; checkRaces reports any race the race detector printed in a
// member's log.
func newProcCluster(t testing.TB, n int, env func(id uint64, start int) []string) *procCluster {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("process tests: %v: cannot find the test binary to re-execute", err)
	}
	addrs, err := loopbackAddrs(n)
	if err != nil {
		t.Skipf("process tests: cannot listen on loopback TCP: %v", err)
	}
	pc := &procCluster{
		t: t, id: fmt.Sprintf("proc-%d", time.Now().UnixNano()), procs: map[uint64]*memberProc{}, env: env,
		http: &http.Client{Timeout: 500 * time.Millisecond},
	}
	base := t.TempDir()
	for i, a := range addrs {
		id := uint64(i + 1)
		pc.members = append(pc.members, raft.Member{ID: id, Addr: a})
		dir := filepath.Join(base, fmt.Sprintf("m%d", id))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		pc.procs[id] = &memberProc{id: id, addr: a, dir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "member.log")}
	}
	t.Cleanup(pc.killAll)
	for _, id := range pc.IDs() {
		if err := pc.start(exe, id); err != nil {
			if errors.Is(err, errNoSpawn) {
				t.Skipf("process tests: %v", err)
			}
			t.Fatalf("member %d: %v", id, err)
		}
	}
	pc.waitLeader(15*time.Second, 0)
	return pc
}

// IDs returns the member IDs in order.
func (pc *procCluster) IDs() []uint64 {
	ids := make([]uint64, 0, len(pc.procs))
	for id := range pc.procs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Addrs returns every member's address.
func (pc *procCluster) Addrs() []string {
	var out []string
	for _, m := range pc.members {
		out = append(out, m.Addr)
	}
	return out
}

func (pc *procCluster) membersEnv() string {
	var parts []string
	for _, m := range pc.members {
		parts = append(parts, fmt.Sprintf("%d=%s", m.ID, m.Addr))
	}
	return strings.Join(parts, ",")
}

// start starts (or restarts, from its data directory) member id and waits
// for its ready line.
func (pc *procCluster) start(exe string, id uint64) error {
	p := pc.procs[id]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("member %d is still running", id)
		}
	}
	p.starts++
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== start %d of member %d at %s\n", p.starts, id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		envMemberID+"="+strconv.FormatUint(id, 10),
		envMembers+"="+pc.membersEnv(),
		envMemberDir+"="+p.dir,
		envCluster+"="+pc.id,
		envWatchStdin+"=1",
	)
	if pc.env != nil {
		cmd.Env = append(cmd.Env, pc.env(id, p.starts)...)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%w: %v", errNoSpawn, err)
	}
	p.cmd, p.stdin, p.exited, p.exitErr = cmd, stdin, make(chan struct{}), nil
	exited := p.exited
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if s, ok := strings.CutPrefix(line, readyLinePrefx); ok {
				select {
				case ready <- s:
				default:
				}
				continue
			}
			fmt.Fprintln(logf, line)
		}
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		logf.Close()
		close(exited)
	}()
	select {
	case s := <-ready:
		p.status = s
		return nil
	case <-exited:
		return fmt.Errorf("member %d exited before it was ready (%v); log:\n%s", id, p.exitErr, tail(p.logPath, 40))
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("member %d not ready within 30 s; log:\n%s", id, tail(p.logPath, 40))
	}
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// restart starts a stopped member again from its data directory.
func (pc *procCluster) restart(id uint64) {
	pc.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		pc.t.Fatal(err)
	}
	if err := pc.start(exe, id); err != nil {
		pc.t.Fatalf("restart member %d: %v", id, err)
	}
}

func (pc *procCluster) signal(id uint64, sig syscall.Signal) {
	pc.t.Helper()
	p := pc.procs[id]
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		pc.t.Fatalf("member %d was never started", id)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		pc.t.Fatalf("signal %v to member %d: %v", sig, id, err)
	}
}

// kill sends SIGKILL to member id and waits until the process is gone.
func (pc *procCluster) kill(id uint64) {
	pc.t.Helper()
	pc.signal(id, syscall.SIGKILL)
	select {
	case <-pc.procs[id].exited:
	case <-time.After(10 * time.Second):
		pc.t.Fatalf("member %d did not die within 10 s of SIGKILL", id)
	}
}

// terminate stops member id cleanly (SIGTERM: profiles are written) and
// returns its exit error; SIGKILL after the timeout.
func (pc *procCluster) terminate(id uint64, timeout time.Duration) error {
	p := pc.procs[id]
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.exitErr
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("member %d did not stop within %v of SIGTERM", id, timeout)
	}
}

func (pc *procCluster) killAll() {
	for _, id := range pc.IDs() {
		p := pc.procs[id]
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-exited:
			continue
		default:
		}
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}
}

// checkRaces fails the test if a member's race detector reported a race.
func (pc *procCluster) checkRaces() {
	pc.t.Helper()
	for _, id := range pc.IDs() {
		b, _ := os.ReadFile(pc.procs[id].logPath)
		if strings.Contains(string(b), "WARNING: DATA RACE") {
			pc.t.Errorf("member %d: the race detector reported a race; log:\n%s", id, string(b))
		}
	}
}

// dumpLogs logs the tail of every member's log (on failure).
func (pc *procCluster) dumpLogs() {
	for _, id := range pc.IDs() {
		pc.t.Logf("---- member %d log (tail) ----\n%s", id, tail(pc.procs[id].logPath, 30))
	}
}

// status asks member id for its status; it fails while the member is down
// or stopped.
func (pc *procCluster) status(id uint64) (memberStatus, error) {
	p := pc.procs[id]
	p.mu.Lock()
	addr, exited := p.status, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return memberStatus{}, fmt.Errorf("member %d is not running", id)
	default:
	}
	resp, err := pc.http.Get("http://" + addr + "/status")
	if err != nil {
		return memberStatus{}, err
	}
	defer resp.Body.Close()
	var st memberStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// leader returns the member that leads with the highest term among those
// that answer, or 0.
func (pc *procCluster) leader() (uint64, memberStatus) {
	var lead uint64
	var best memberStatus
	for _, id := range pc.IDs() {
		st, err := pc.status(id)
		if err == nil && st.State == raft.StateLeader.String() && st.Term >= best.Term {
			lead, best = id, st
		}
	}
	return lead, best
}

// waitFor polls cond until it holds, failing the test at the deadline.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLeader waits for a leader other than `not` whose term every other
// running, responsive member has reached, and returns it.
func (pc *procCluster) waitLeader(timeout time.Duration, not uint64) uint64 {
	pc.t.Helper()
	var lead uint64
	waitFor(pc.t, timeout, "a leader", func() bool {
		l, st := pc.leader()
		if l == 0 || l == not {
			return false
		}
		for _, id := range pc.IDs() {
			if o, err := pc.status(id); err == nil && (o.Term != st.Term || o.Lead != l) {
				return false
			}
		}
		lead = l
		return true
	})
	return lead
}

// pinnedGet runs a Sequential counter Get on one member, after that member
// has applied minIndex: a read pinned to it, on its own connection outside
// any session. It returns the value and the index the member had applied.
func pinnedGet(ctx context.Context, addr, clusterID string, resource, minIndex uint64) (int64, uint64, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	tc := transport.NewConn(nc, transport.DefaultMaxFrameSize)
	if err := transport.Handshake(tc, transport.Hello{ClusterID: clusterID, Kind: transport.KindClient}); err != nil {
		return 0, 0, err
	}
	b, err := protocol.Encode(&protocol.Message{Type: protocol.Query, ID: 1, Resource: resource, Op: counter.OpGet,
		Consistency: runtime.Sequential, Index: minIndex})
	if err != nil {
		return 0, 0, err
	}
	if err := tc.WriteFrame(b); err != nil {
		return 0, 0, err
	}
	if err := tc.Flush(); err != nil {
		return 0, 0, err
	}
	for {
		body, err := tc.ReadFrame()
		if err != nil {
			return 0, 0, err
		}
		m, err := protocol.Decode(body)
		if err != nil {
			return 0, 0, err
		}
		if m.Type != protocol.Response || m.ID != 1 {
			continue
		}
		if m.Status != protocol.OK || m.Err != nil {
			return 0, 0, fmt.Errorf("pinned query: status %d: %v", m.Status, protocol.ErrorOf(m.Err, counter.Type))
		}
		v, _ := binary.Varint(m.Result)
		return v, m.Index, nil
	}
}
