//go:build unix

package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/internal/loadgen"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/internal/counter"
)

// benchKVType is a minimal key-value resource for the benchmark, shaped like
// etcd's put/get (the counter publishes an event to every session on each
// change, which is not what an etcd put costs). Put takes a key and a value
// and returns nothing; Get returns the value.
var benchKVType = &runtime.ResourceType{
	Name: "copycat.test.BenchKV",
	Operations: []runtime.Operation{
		{Code: 1, Name: "Put", Kind: runtime.Command},
		{Code: 2, Name: "Get", Kind: runtime.Query, Consistency: runtime.Linearizable},
	},
	New: func() runtime.Resource { return &benchKV{m: map[string][]byte{}} },
}

const (
	opKVPut runtime.OpCode = 1
	opKVGet runtime.OpCode = 2
)

type benchKV struct{ m map[string][]byte }

func (kv *benchKV) Execute(_ runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	k, n := binary.Uvarint(args)
	if n <= 0 || uint64(len(args)-n) < k {
		return nil, errors.New("benchkv: malformed arguments")
	}
	key := args[n : n+int(k)]
	switch op {
	case opKVPut:
		kv.m[string(key)] = slices.Clone(args[n+int(k):])
		return nil, nil
	case opKVGet:
		return kv.m[string(key)], nil
	}
	return nil, runtime.ErrUnknownOperation
}

func kvArgs(key, value []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 2+len(key)+len(value)), uint64(len(key)))
	b = append(b, key...)
	return append(b, value...)
}

// ---- the benchmark ----

// benchConfig is read from the environment.
type benchConfig struct {
	dur, warm  time.Duration
	putClients []int
	getClients int
	shared     [2]int // callers, clients: the pipelined variant
	keySpace   int
	getKeys    int
	size       int
	only       []string
	profileDir string
	results    io.Writer
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func readBenchConfig(t *testing.T) benchConfig {
	t.Helper()
	c := benchConfig{keySpace: 100000, getKeys: 1000, size: 128, results: os.Stdout}
	var err error
	if c.dur, err = time.ParseDuration(envOr("COPYCAT_BENCH_DUR", "5s")); err != nil {
		t.Fatalf("COPYCAT_BENCH_DUR: %v", err)
	}
	if c.warm, err = time.ParseDuration(envOr("COPYCAT_BENCH_WARM", "500ms")); err != nil {
		t.Fatalf("COPYCAT_BENCH_WARM: %v", err)
	}
	ints := func(name, def string) []int {
		var out []int
		for _, p := range strings.Split(envOr(name, def), ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			v, err := strconv.Atoi(p)
			if err != nil || v <= 0 {
				t.Fatalf("%s: bad positive integer %q", name, p)
			}
			out = append(out, v)
		}
		return out
	}
	c.putClients = ints("COPYCAT_BENCH_CLIENTS", "1,8,64")
	c.getClients = ints("COPYCAT_BENCH_GET_CLIENTS", "8")[0]
	sh := ints("COPYCAT_BENCH_SHARED", "64,8")
	if len(sh) != 2 {
		t.Fatalf("COPYCAT_BENCH_SHARED: want callers,clients")
	}
	c.shared = [2]int{sh[0], sh[1]}
	c.only = strings.Split(envOr("COPYCAT_BENCH_ONLY", "put,shared,get"), ",")
	c.profileDir = os.Getenv("COPYCAT_BENCH_PROFILE_DIR")
	if p := os.Getenv("COPYCAT_BENCH_RESULTS"); p != "" {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatalf("COPYCAT_BENCH_RESULTS: %v", err)
		}
		t.Cleanup(func() { f.Close() })
		c.results = io.MultiWriter(os.Stdout, f)
	}
	return c
}

// resultFields renders a phase as the peers do (internal/loadgen runs it by
// their rules).
func resultFields(r loadgen.Result) []string {
	slices.Sort(r.Lats)
	f := []string{
		fmt.Sprintf("ops/s=%.0f", float64(r.N)/r.Elapsed.Seconds()),
		"p50_ms=" + loadgen.Ms(loadgen.Percentile(r.Lats, 0.50)),
		"p99_ms=" + loadgen.Ms(loadgen.Percentile(r.Lats, 0.99)),
		fmt.Sprintf("n=%d", r.N),
	}
	if r.Errs > 0 {
		f = append(f, fmt.Sprintf("errors=%d", r.Errs))
	}
	return f
}

func runTimed(t *testing.T, c int, warm, dur time.Duration, op loadgen.Op) loadgen.Result {
	return loadgen.Run(context.Background(), c, warm, dur, op, loadgen.Hooks{
		Failed: func(w int, err error, failures int) {
			if failures <= 3 {
				t.Logf("worker %d: error: %v", w, err)
			}
		},
	})
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time (user + system) process pid has used, or 0
// if /proc cannot tell.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * clockTick
}

// phaseCPU measures the CPU time the leader, the followers and this (the
// clients') process use during a phase's measured window, which starts
// after warm and lasts dur from now; the result arrives once it has ended.
func phaseCPU(pc *procCluster, lead uint64, warm, dur time.Duration) <-chan [3]time.Duration {
	pids := map[uint64]int{}
	for _, id := range pc.IDs() {
		p := pc.procs[id]
		p.mu.Lock()
		if p.cmd != nil && p.cmd.Process != nil {
			pids[id] = p.cmd.Process.Pid
		}
		p.mu.Unlock()
	}
	sample := func() (out [3]time.Duration) {
		for id, pid := range pids {
			if id == lead {
				out[0] += procCPU(pid)
			} else {
				out[1] += procCPU(pid)
			}
		}
		out[2] = procCPU(os.Getpid())
		return out
	}
	ch := make(chan [3]time.Duration, 1)
	go func() {
		time.Sleep(warm)
		before := sample()
		time.Sleep(dur)
		after := sample()
		for i := range after {
			after[i] -= before[i]
		}
		ch <- after
	}()
	return ch
}

// cpuPerOpLine renders a phase's CPU time per counted operation: the leader,
// each follower (their mean), the clients' process, and the sum.
func cpuPerOpLine(phase string, cpu [3]time.Duration, ops, followers int) string {
	if ops == 0 {
		ops = 1
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(ops) }
	return fmt.Sprintf("meta cpu_per_op %s leader_us=%.1f follower_us=%.1f client_us=%.1f total_us=%.1f",
		phase, us(cpu[0]), us(cpu[1])/float64(max(followers, 1)), us(cpu[2]), us(cpu[0]+cpu[1]+cpu[2]))
}

// TestClusterBenchmark measures a 3-process loopback cluster with fsync on,
// through the client, in the shape of ../shared/peers (etcd put/get):
//
//	COPYCAT_BENCH=1 go test ./runtime/server -run TestClusterBenchmark -v
//
// It prints one line per measurement, prefixed "copycat":
//
//	copycat put c=8 size=128 ops/s=... p50_ms=... p99_ms=... n=...
//	copycat put c=64 clients=8 size=128 ...      (64 callers sharing 8 clients)
//	copycat get c=8 mode=linearizable ...        (also linearizable_lease, sequential)
//
// and after each put phase the CPU time per counted operation of the
// leader, a follower (mean) and the clients' process, from /proc:
//
//	meta cpu_per_op phase=put_c=8 leader_us=... follower_us=... client_us=... total_us=...
//
// Knobs: COPYCAT_BENCH_DUR (5s), COPYCAT_BENCH_WARM (500ms),
// COPYCAT_BENCH_CLIENTS (1,8,64), COPYCAT_BENCH_SHARED (64,8),
// COPYCAT_BENCH_GET_CLIENTS (8), COPYCAT_BENCH_ONLY (put,shared,get; also
// "add": counter Adds, which publish an event to every session),
// COPYCAT_BENCH_RESULTS (append the lines to a file), and
// COPYCAT_BENCH_PROFILE_DIR (each member writes cpu-<id>.pprof,
// allocs-<id>.pprof and mutex-<id>.pprof there when it stops).
func TestClusterBenchmark(t *testing.T) {
	if os.Getenv("COPYCAT_BENCH") == "" {
		t.Skip("set COPYCAT_BENCH=1 to run the cluster benchmark")
	}
	cfg := readBenchConfig(t)
	var env func(id uint64, start int) []string
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			t.Fatal(err)
		}
		env = func(id uint64, _ int) []string {
			p := func(kind string) string { return filepath.Join(cfg.profileDir, fmt.Sprintf("%s-%d.pprof", kind, id)) }
			return []string{envCPUProfile + "=" + p("cpu"), envAllocsProf + "=" + p("allocs"), envMutexProf + "=" + p("mutex")}
		}
	}
	pc := newProcCluster(t, 3, env)
	lead, _ := pc.leader()
	line := func(prefix string, kv ...string) {
		_, _ = io.WriteString(cfg.results, strings.Join(append([]string{prefix}, kv...), " ")+"\n")
	}
	line("meta", "copycat_go="+goruntime.Version(), fmt.Sprintf("gomaxprocs=%d", goruntime.GOMAXPROCS(0)),
		"members=3", "fsync=on", "storage=bolt", "net=loopback_tcp", fmt.Sprintf("leader=%d", lead),
		"dur="+cfg.dur.String(), "warm="+cfg.warm.String(), "date="+time.Now().UTC().Format(time.RFC3339))
	c0 := loadgen.CPUSnap()
	ctx := context.Background()

	type handle struct {
		cli *client.Client
		kv  *client.Resource
	}
	connect := func(n int) []handle {
		hs := make([]handle, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range hs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				cli, err := client.Connect(cctx, pc.Addrs(), client.WithClusterID(pc.id))
				if err != nil {
					errs <- err
					return
				}
				r, err := cli.Open(cctx, benchKVType, "bench")
				if err != nil {
					_ = cli.Close()
					errs <- err
					return
				}
				hs[i] = handle{cli, r}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("connect: %v", err)
		}
		return hs
	}
	closeAll := func(hs []handle) {
		var wg sync.WaitGroup
		for _, h := range hs {
			wg.Add(1)
			go func() { defer wg.Done(); _ = h.cli.Close() }()
		}
		wg.Wait()
	}
	value := func(rng *rand.Rand) []byte {
		const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, cfg.size)
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return b
	}
	putOp := func(hs []handle) func(context.Context, int, *rand.Rand) error {
		return func(ctx context.Context, w int, rng *rand.Rand) error {
			key := fmt.Appendf(nil, "/pb/put/%08d", rng.IntN(cfg.keySpace))
			_, err := hs[w%len(hs)].kv.Command(ctx, opKVPut, kvArgs(key, value(rng)))
			return err
		}
	}
	has := func(s string) bool { return slices.Contains(cfg.only, s) }

	followers := len(pc.IDs()) - 1
	if has("put") {
		for _, c := range cfg.putClients {
			hs := connect(c)
			cpu := phaseCPU(pc, lead, cfg.warm, cfg.dur)
			r := runTimed(t, c, cfg.warm, cfg.dur, putOp(hs))
			line("copycat put", append([]string{fmt.Sprintf("c=%d", c), fmt.Sprintf("size=%d", cfg.size)}, resultFields(r)...)...)
			line(cpuPerOpLine(fmt.Sprintf("phase=put_c=%d", c), <-cpu, r.N, followers))
			closeAll(hs)
		}
	}
	if has("shared") {
		callers, clients := cfg.shared[0], cfg.shared[1]
		hs := connect(clients)
		cpu := phaseCPU(pc, lead, cfg.warm, cfg.dur)
		r := runTimed(t, callers, cfg.warm, cfg.dur, putOp(hs))
		line("copycat put", append([]string{fmt.Sprintf("c=%d", callers), fmt.Sprintf("clients=%d", clients), fmt.Sprintf("size=%d", cfg.size)}, resultFields(r)...)...)
		line(cpuPerOpLine(fmt.Sprintf("phase=put_c=%d_clients=%d", callers, clients), <-cpu, r.N, followers))
		closeAll(hs)
	}
	if has("get") {
		hs := connect(cfg.getClients)
		rng := rand.New(rand.NewPCG(1, 2))
		keys := make([][]byte, cfg.getKeys)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "/pb/get/%08d", i)
			if _, err := hs[i%len(hs)].kv.Command(ctx, opKVPut, kvArgs(keys[i], value(rng))); err != nil {
				t.Fatalf("pre-write: %v", err)
			}
		}
		for _, mode := range []struct {
			name string
			cons runtime.Consistency
		}{{"linearizable", runtime.Linearizable}, {"linearizable_lease", runtime.LinearizableLease}, {"sequential", runtime.Sequential}} {
			r := runTimed(t, cfg.getClients, cfg.warm, cfg.dur, func(ctx context.Context, w int, rng *rand.Rand) error {
				k := keys[rng.IntN(len(keys))]
				v, err := hs[w].kv.Query(ctx, opKVGet, kvArgs(k, nil), client.WithConsistency(mode.cons))
				if err == nil && len(v) != cfg.size {
					err = fmt.Errorf("get %s: %d bytes, want %d", k, len(v), cfg.size)
				}
				return err
			})
			line("copycat get", append([]string{fmt.Sprintf("c=%d", cfg.getClients), "mode=" + mode.name}, resultFields(r)...)...)
		}
		closeAll(hs)
	}
	if has("add") {
		for _, c := range cfg.putClients {
			ctrs := make([]*counter.Client, c)
			var clis []*client.Client
			for i := range ctrs {
				cli, err := client.Connect(ctx, pc.Addrs(), client.WithClusterID(pc.id))
				if err != nil {
					t.Fatal(err)
				}
				clis = append(clis, cli)
				if ctrs[i], err = counter.Open(ctx, cli, "bench"); err != nil {
					t.Fatal(err)
				}
			}
			r := runTimed(t, c, cfg.warm, cfg.dur, func(ctx context.Context, w int, _ *rand.Rand) error {
				_, err := ctrs[w].Add(ctx, 1)
				return err
			})
			line("copycat add", append([]string{fmt.Sprintf("c=%d", c), "resource=counter"}, resultFields(r)...)...)
			for _, cli := range clis {
				_ = cli.Close()
			}
		}
	}
	if l := loadgen.CPULine("copycat", c0, loadgen.CPUSnap()); l != "" {
		line(l)
	}
	if l, _ := pc.leader(); l != lead {
		t.Logf("leadership moved during the run: %d -> %d", lead, l)
	}
	for _, id := range pc.IDs() {
		if err := pc.terminate(id, 15*time.Second); err != nil {
			t.Errorf("member %d: %v", id, err)
		}
	}
	if cfg.profileDir != "" {
		t.Logf("profiles in %s (member %d led)", cfg.profileDir, lead)
	}
}
