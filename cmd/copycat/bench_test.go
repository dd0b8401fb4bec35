package main

import (
	"bytes"
	"context"
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

// benchLine is one measurement line: what identifies it (prefix and
// identifying fields) and its metrics.
type benchLine struct {
	id      string
	metrics map[string]float64
	raw     string
}

// benchMetricKeys are the fields that are measurements, not identifiers
// (the rule of peerbench table).
func isBenchMetric(k string) bool {
	return k == "n" || k == "errors" || strings.HasSuffix(k, "/s") ||
		strings.HasSuffix(k, "_ms") && k != "settle_ms"
}

// parseBenchLines parses bench's stdout, leaving out meta lines.
func parseBenchLines(t *testing.T, out string) map[string]benchLine {
	t.Helper()
	lines := map[string]benchLine{}
	for l := range strings.Lines(out) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "meta ") {
			continue
		}
		fs := strings.Fields(l)
		require.GreaterOrEqual(t, len(fs), 2, "line %q", l)
		bl := benchLine{metrics: map[string]float64{}, raw: l}
		id := fs[:2]
		for _, f := range fs[2:] {
			k, v, ok := strings.Cut(f, "=")
			require.True(t, ok, "field %q of %q is not key=value", f, l)
			if !isBenchMetric(k) {
				id = append(id, f)
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, "metric %q of %q", f, l)
			bl.metrics[k] = x
		}
		bl.id = strings.Join(id, " ")
		require.NotContains(t, lines, bl.id, "measured twice")
		lines[bl.id] = bl
	}
	return lines
}

// checkBenchLine checks that the measurement id was printed with
// operations counted, no errors, the rate (if any) and ordered latencies.
func checkBenchLine(t *testing.T, lines map[string]benchLine, id, rate string) {
	t.Helper()
	l, ok := lines[id]
	if !assert.True(t, ok, "no line %q", id) {
		return
	}
	assert.Positive(t, l.metrics["n"], l.raw)
	assert.NotContains(t, l.metrics, "errors", l.raw)
	if rate != "" {
		assert.Positive(t, l.metrics[rate], l.raw)
	}
	p50, p99, most := l.metrics["p50_ms"], l.metrics["p99_ms"], l.metrics["max_ms"]
	assert.Positive(t, p50, l.raw)
	assert.LessOrEqual(t, p50, p99, l.raw)
	assert.LessOrEqual(t, p99, most, l.raw)
}

// Every workload, in a short run against a cluster on loopback, prints its
// lines with operations counted and no errors.
func TestBenchWorkloads(t *testing.T) {
	c := startShellCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	root := newRoot()
	root.SetArgs([]string{"bench", "--members", c.members, "--duration", "300ms", "--warmup", "50ms", "--clients", "1,2",
		"--election-trials", "5", "--handover-trials", "3", "--handover-settle", "20ms"})
	root.SetOut(&out)
	root.SetErr(&errOut)
	require.NoError(t, root.ExecuteContext(ctx), "stderr: %s", errOut.String())
	t.Logf("stdout:\n%s", out.String())

	assert.Empty(t, errOut.String(), "no diagnostics and no progress line (stderr is not a terminal)")
	assert.Contains(t, out.String(), "meta copycat_go=")
	assert.Contains(t, out.String(), " target=members addrs="+c.members+" ")
	lines := parseBenchLines(t, out.String())
	for _, id := range []string{"copycat put c=1 size=128", "copycat put c=2 size=128"} {
		checkBenchLine(t, lines, id, "ops/s")
	}
	for _, mode := range []string{"linearizable", "linearizable_lease", "sequential"} {
		for _, c := range []string{"1", "2"} {
			checkBenchLine(t, lines, "copycat get c="+c+" mode="+mode, "ops/s")
		}
	}
	for _, id := range []string{"copycat lock keys=1 c=1", "copycat lock keys=1 c=8", "copycat lock keys=8 c=8"} {
		checkBenchLine(t, lines, id, "cycles/s")
	}
	checkBenchLine(t, lines, "copycat election mode=uncontested", "")
	checkBenchLine(t, lines, "copycat election mode=handover settle_ms=20.000", "")
	assert.Equal(t, 5.0, lines["copycat election mode=uncontested"].metrics["n"])
	assert.Equal(t, 3.0, lines["copycat election mode=handover settle_ms=20.000"].metrics["n"])
	assert.Len(t, lines, 2+6+3+2, "nothing else measured")
}

// --workload picks workloads; --progress draws the status line on stderr
// even when it is not a terminal, erased before each measurement line.
func TestBenchSelectedWorkloadWithProgress(t *testing.T) {
	c := startShellCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	root := newRoot()
	root.SetArgs([]string{"bench", "--members", c.members, "--workload", "get-seq", "--clients", "3",
		"--duration", "300ms", "--warmup", "0s", "--progress"})
	root.SetOut(&out)
	root.SetErr(&errOut)
	require.NoError(t, root.ExecuteContext(ctx), "stderr: %s", errOut.String())
	lines := parseBenchLines(t, out.String())
	assert.Len(t, lines, 1, out.String())
	checkBenchLine(t, lines, "copycat get c=3 mode=sequential", "ops/s")
	prog := errOut.String()
	assert.Contains(t, prog, "\rcopycat bench: get c=3 mode=sequential  ")
	assert.True(t, strings.HasSuffix(prog, "\r"), "the status line is erased at the end: %q", prog)
	assert.NotContains(t, prog, "\n", "only the status line: %q", prog)
}

// Mistakes on the command line get one sentence before anything starts.
func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown workload", []string{"--workload", "put,frob"}, `--workload "frob" is not one of put, get, get-lease, get-seq, lock, election`},
		{"empty workload", []string{"--workload", " , "}, "--workload is empty"},
		{"zero clients", []string{"--clients", "1,0"}, `--clients entry "0" is not a positive integer`},
		{"not a number", []string{"--clients", "eight"}, `--clients entry "eight" is not a positive integer`},
		{"empty clients", []string{"--clients", ","}, "--clients is empty"},
		{"zero duration", []string{"--duration", "0s"}, "--duration must be positive"},
		{"negative warmup", []string{"--warmup", "-1s"}, "--warmup must not be negative"},
		{"zero trials", []string{"--election-trials", "0"}, "--election-trials must be positive"},
		{"zero handovers", []string{"--handover-trials", "0"}, "--handover-trials must be positive"},
		{"negative settle", []string{"--handover-settle", "-1ms"}, "--handover-settle must not be negative"},
		{"keep with members", []string{"--members", "127.0.0.1:1", "--keep"}, "--keep only applies to the cluster bench starts itself"},
		{"tls without members", []string{"--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca"}, "need --members"},
		{"bad members", []string{"--members", "nowhere"}, `--members entry "nowhere" is not a host:port address`},
		{"zero timeout", []string{"--timeout", "0s"}, "--timeout must be positive"},
		{"json", []string{"--json"}, "--json is not supported by bench"},
		{"argument", []string{"put"}, `unknown command "put" for "copycat bench"`},
		{"unknown flag", []string{"--frob"}, "unknown flag: --frob"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			root := newRoot()
			root.SetArgs(append([]string{"bench"}, tc.args...))
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			began := time.Now()
			err := root.ExecuteContext(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.Equal(t, exitFailure, exitCode(err))
			assert.Empty(t, out.String(), "nothing started, nothing printed")
			assert.Less(t, time.Since(began), time.Second, "refused before starting or connecting anything")
		})
	}
}

// buildCopycat builds this package's binary into dir, once for the
// subtests of the test that needs it (as TestE2E does).
func buildCopycat(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "copycat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

var startedPIDs = regexp.MustCompile(`started 3 members \(pids (\d+),(\d+),(\d+)\)`)

// memberPIDs returns the PIDs bench said it started.
func memberPIDs(t *testing.T, stderr string) []int {
	t.Helper()
	m := startedPIDs.FindStringSubmatch(stderr)
	require.NotNil(t, m, "no 'started 3 members' line in stderr: %s", stderr)
	var pids []int
	for _, s := range m[1:] {
		pid, err := strconv.Atoi(s)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// assertCleanedUp checks that the members are gone and the data directory
// under tmp was removed.
func assertCleanedUp(t *testing.T, pids []int, tmp string) {
	t.Helper()
	for _, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "member process %d still exists", pid)
	}
	left, err := filepath.Glob(filepath.Join(tmp, "copycat-bench-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "the data directory is removed")
}

// Without --members, bench runs its own three member processes, and stops
// them and removes their data when done, or when interrupted.
func TestBenchOwnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the own-cluster bench in -short mode (it builds the binary and runs 3 member processes)")
	}
	bin := buildCopycat(t, t.TempDir())

	t.Run("run", func(t *testing.T) {
		tmp := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "bench", "--duration", "300ms", "--workload", "put", "--clients", "1")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
		t.Logf("stdout:\n%s", stdout.String())
		assert.Contains(t, stdout.String(), "meta target=own members=3 fsync=on")
		lines := parseBenchLines(t, stdout.String())
		assert.Len(t, lines, 1)
		checkBenchLine(t, lines, "copycat put c=1 size=128", "ops/s")
		assertCleanedUp(t, memberPIDs(t, stderr.String()), tmp)
	})

	t.Run("interrupted", func(t *testing.T) {
		tmp := t.TempDir()
		cmd := exec.Command(bin, "bench", "--duration", "1m", "--workload", "put", "--clients", "1")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
		})
		waitFor(t, time.Minute, "the cluster to be up", func() (bool, string) {
			return strings.Contains(stdout.String(), "meta copycat_go="), stderr.String()
		})
		pids := memberPIDs(t, stderr.String())
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		var err error
		select {
		case err = <-done:
			done <- err // for the cleanup
		case <-time.After(time.Minute):
			t.Fatalf("bench did not exit after SIGINT; stderr: %s", stderr.String())
		}
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
		assert.Equal(t, exitFailure, exit.ExitCode())
		assert.Contains(t, stderr.String(), "copycat: interrupted")
		assert.NotContains(t, stdout.String(), "copycat put", "no partial measurement")
		assertCleanedUp(t, pids, tmp)
	})
}
