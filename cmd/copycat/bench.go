package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/internal/loadgen"
)

// `copycat bench` measures a cluster in the shape of the peers' benchmarks
// (../shared/peers in the project's workspace: etcd 3.4 and hashicorp/raft
// on the same machine), and prints the same one-line-per-measurement format
// so that `peerbench table` renders copycat next to them.

// Workload names, in the order they run.
const (
	wlPut      = "put"
	wlGet      = "get"
	wlGetLease = "get-lease"
	wlGetSeq   = "get-seq"
	wlLock     = "lock"
	wlElection = "election"
)

var benchWorkloads = []string{wlPut, wlGet, wlGetLease, wlGetSeq, wlLock, wlElection}

// The shapes the peers' harness uses, so that the numbers compare.
const (
	benchKeySpace    = 100000 // keys the puts spread over (etcd: -keyspace)
	benchGetKeys     = 1000   // keys written before the reads and read by them (etcd: -get-keys)
	benchValueSize   = 128    // bytes per value (etcd's puts, hraft's commands)
	benchMapName     = "copycat-bench"
	benchLockClients = 8 // contenders of the keys=1 c=8 and keys=8 c=8 lock phases
)

// benchOptions are the flags of `copycat bench`.
type benchOptions struct {
	client         clientFlags
	workloads      string
	clients        string
	duration       time.Duration
	warmup         time.Duration
	electionTrials int
	handoverTrials int
	handoverSettle time.Duration
	progress       bool
	keep           bool
}

// benchPlan is what the validated flags ask for.
type benchPlan struct {
	workloads map[string]bool
	clients   []int
	// own: no --members, so bench starts and stops its own cluster.
	own bool
}

func newBench() *cobra.Command {
	o := benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a cluster's throughput and latency the way the peers' benchmarks measure etcd",
		Long: `Measure a cluster with closed-loop clients and print one line per measurement
in the peers' format, e.g.

  copycat put c=8 size=128 ops/s=6120 p50_ms=1.171 p99_ms=4.012 max_ms=9.870 n=30601

(identifying fields, then metrics), so that "peerbench table" renders the
result files of copycat, etcd and hashicorp/raft side by side. Progress goes
to stderr (a line rewritten in place when stderr is a terminal, or with
--progress); the measurements go to stdout.

Without --members, bench starts its own cluster: it runs this binary as
"copycat server" three times on 127.0.0.1 (free ports, fsync on, data in a
temporary directory), waits for a leader, measures, then stops the members
(SIGTERM, SIGKILL after 15s; also on Ctrl-C) and deletes the directory
(--keep keeps it, with each member's log). With --members it measures that
running cluster ($COPYCAT_MEMBERS is not used: bench never measures a
cluster it was not pointed at explicitly).

How each workload is measured (the definitions of the peers' README):

  Timed phases (put, get*, lock) are closed loops: every worker issues its
  next operation as soon as the previous one returns. Each phase has an
  unmeasured --warmup, then a --duration window; only operations that start
  after the warm-up and finish inside the window count. Throughput = count /
  window; latency percentiles are nearest-rank over every counted operation.
  Each worker is its own client with its own session (etcd: one clientv3
  client per worker). An operation that fails is counted in errors=.

  put       c workers (each of --clients) call map Put of a 128-byte value
            on a 16-byte key drawn uniformly from 100,000 keys (etcd put).
  get       c workers Get random keys out of 1,000 written beforehand,
            Linearizable (a ReadIndex round via the leader; etcd's
            linearizable get). Lines: get c=N mode=linearizable.
  get-lease the same with LinearizableLease (the leader answers under its
            lease). Lines: get c=N mode=linearizable_lease.
  get-seq   the same with Sequential reads (any member; etcd's serializable
            get). Lines: get c=N mode=sequential.
  lock      three shapes: keys=1 c=1, keys=1 c=8 (8 contenders, one lock) and
            keys=8 c=8 (contender i uses lock i). Each contender loops
            Lock + Unlock on its own Mutex; cycles/s counts completed
            Lock+Unlock cycles of all contenders, latency is one cycle
            (including queueing behind the others).
  election  mode=uncontested: --election-trials Campaigns with nobody else
            campaigning (time to be elected), Resign in between, after 3
            untimed ones. mode=handover: --handover-trials times two
            candidates; the waiting one has been queued for
            --handover-settle when the leader resigns; measured from the
            call to Resign until the waiter's Campaign returns elected
            (after 2 untimed handovers). Roles alternate.

Lines starting with "meta" carry the setup and the CPU accounting of this
machine during each workload (steal_pct: time the hypervisor took away).`,
		Example: `  copycat bench                                    # own 3-process cluster, every workload
  copycat bench --workload put,lock --clients 1,8 --duration 10s
  copycat bench --members 10.0.0.1:7001,10.0.0.2:7001,10.0.0.3:7001 > run1.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := o.validate(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			go func() {
				// Once interrupted, a second signal kills the process as
				// usual rather than wait for the members to stop.
				<-ctx.Done()
				stop()
			}()
			return runBench(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), &o, plan)
		},
	}
	o.client.register(cmd)
	// Unlike the shell commands, bench starts its own cluster when no
	// --members is given, so the flag has no default address.
	o.client.members = ""
	members := cmd.PersistentFlags().Lookup("members")
	members.DefValue = ""
	members.Usage = "comma-separated host:port addresses of a running cluster to measure (default: start an own 3-member cluster)"
	_ = cmd.PersistentFlags().MarkHidden("json") // the output is the peers' line format

	f := cmd.Flags()
	f.StringVar(&o.workloads, "workload", strings.Join(benchWorkloads, ","), "comma-separated workloads to run: "+strings.Join(benchWorkloads, ", "))
	f.StringVar(&o.clients, "clients", "1,8,64", "comma-separated concurrent clients for the put and get workloads")
	f.DurationVar(&o.duration, "duration", 5*time.Second, "measured window of each timed phase")
	f.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up before each timed phase")
	f.IntVar(&o.electionTrials, "election-trials", 100, "uncontested campaigns to time")
	f.IntVar(&o.handoverTrials, "handover-trials", 30, "election handovers to time")
	f.DurationVar(&o.handoverSettle, "handover-settle", 200*time.Millisecond, "how long the waiting candidate is queued before the leader resigns")
	f.BoolVar(&o.progress, "progress", false, "show the progress line even when stderr is not a terminal")
	f.BoolVar(&o.keep, "keep", false, "keep the own cluster's data directory and member logs (not with --members)")
	return cmd
}

// validate checks the flags before anything starts or connects.
func (o *benchOptions) validate(cmd *cobra.Command) (benchPlan, error) {
	plan := benchPlan{workloads: map[string]bool{}, own: !cmd.Flags().Changed("members")}
	probe := o.client
	if plan.own {
		// Checks every other client flag; the members come later.
		probe.members = "127.0.0.1:0"
	}
	if _, err := probe.addrs(); err != nil {
		return plan, err
	}
	if o.client.json {
		return plan, errors.New("--json is not supported by bench: it prints one key=value line per measurement, as the peers' benchmarks do")
	}
	if plan.own && countSet(o.client.tlsCert, o.client.tlsKey, o.client.tlsCA) > 0 {
		return plan, errors.New("--tls-cert, --tls-key and --tls-ca need --members: the cluster bench starts itself runs without TLS")
	}
	if !plan.own && o.keep {
		return plan, errors.New("--keep only applies to the cluster bench starts itself, not with --members")
	}
	for w := range strings.SplitSeq(o.workloads, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if !slices.Contains(benchWorkloads, w) {
			return plan, fmt.Errorf("--workload %q is not one of %s", w, strings.Join(benchWorkloads, ", "))
		}
		plan.workloads[w] = true
	}
	if len(plan.workloads) == 0 {
		return plan, fmt.Errorf("--workload is empty: name at least one of %s", strings.Join(benchWorkloads, ", "))
	}
	for c := range strings.SplitSeq(o.clients, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			return plan, fmt.Errorf("--clients entry %q is not a positive integer", c)
		}
		if !slices.Contains(plan.clients, n) {
			plan.clients = append(plan.clients, n)
		}
	}
	if len(plan.clients) == 0 {
		return plan, errors.New("--clients is empty: give at least one number of concurrent clients")
	}
	switch {
	case o.duration <= 0:
		return plan, fmt.Errorf("--duration must be positive, not %v", o.duration)
	case o.warmup < 0:
		return plan, fmt.Errorf("--warmup must not be negative, not %v", o.warmup)
	case o.electionTrials <= 0:
		return plan, fmt.Errorf("--election-trials must be positive, not %d", o.electionTrials)
	case o.handoverTrials <= 0:
		return plan, fmt.Errorf("--handover-trials must be positive, not %d", o.handoverTrials)
	case o.handoverSettle < 0:
		return plan, fmt.Errorf("--handover-settle must not be negative, not %v", o.handoverSettle)
	}
	return plan, nil
}

// bench is one run of `copycat bench`.
type bench struct {
	o     *benchOptions
	plan  benchPlan
	out   io.Writer // measurement lines
	prog  *progress // diagnostics and the progress line
	runID string    // makes this run's lock and election names unique
}

// runBench runs the workloads the plan names against --members or an own
// cluster, until done or ctx ends.
func runBench(ctx context.Context, stdout, stderr io.Writer, o *benchOptions, plan benchPlan) (err error) {
	b := &bench{
		o: o, plan: plan, out: stdout,
		prog:  newProgress(stderr, o.progress || isTerminal(stderr)),
		runID: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	target := "members"
	if plan.own {
		target = "own"
		cl, err := startBenchCluster(ctx, b.prog, o.client.clusterID, o.keep)
		if err != nil {
			return err
		}
		defer func() {
			if serr := cl.stop(); serr != nil && err == nil {
				err = serr
			}
		}()
		o.client.members = strings.Join(cl.addrs, ",")
		b.line("meta", "target=own", "members=3", "fsync=on", "storage=bolt", "net=loopback_tcp",
			fmt.Sprintf("leader=%d", cl.leader))
	}
	b.line("meta", "copycat_go="+goruntime.Version(), fmt.Sprintf("gomaxprocs=%d", goruntime.GOMAXPROCS(0)),
		"target="+target, "addrs="+o.client.members, "dur="+o.duration.String(), "warm="+o.warmup.String(),
		"date="+time.Now().UTC().Format(time.RFC3339))

	type workload struct {
		name string
		run  func(context.Context) error
	}
	var gets []getMode
	for _, m := range getModes {
		if plan.workloads[m.workload] {
			gets = append(gets, m)
		}
	}
	all := []workload{
		{wlPut, b.runPut},
		{"get", func(ctx context.Context) error { return b.runGet(ctx, gets) }},
		{wlLock, b.runLock},
		{wlElection, b.runElection},
	}
	for _, w := range all {
		if w.name == "get" && len(gets) == 0 || w.name != "get" && !plan.workloads[w.name] {
			continue
		}
		c0 := loadgen.CPUSnap()
		err := w.run(ctx)
		if ctx.Err() != nil {
			return errors.New("interrupted: the benchmark stopped before it finished")
		}
		if err != nil {
			return fmt.Errorf("bench %s: %w", w.name, err)
		}
		if l := loadgen.CPULine("copycat_"+w.name, c0, loadgen.CPUSnap()); l != "" {
			b.line(l)
		}
	}
	return nil
}

// line prints one measurement line: prefix and key=value fields.
func (b *bench) line(prefix string, kv ...string) {
	b.prog.printOut(b.out, strings.Join(append([]string{prefix}, kv...), " "))
}

// connectN opens n clients, each with its own session, in parallel.
func (b *bench) connectN(ctx context.Context, n int, name string) ([]*shellClient, error) {
	clis := make([]*shellClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range clis {
		wg.Go(func() {
			clis[i], errs[i] = b.o.client.connect(ctx, fmt.Sprintf("copycat bench %s %d", name, i))
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		closeAll(clis)
		return nil, err
	}
	return clis, nil
}

// closeAll closes the clients (ending their sessions) in parallel.
func closeAll(clis []*shellClient) {
	var wg sync.WaitGroup
	for _, c := range clis {
		if c != nil {
			wg.Go(func() { _ = c.Close() })
		}
	}
	wg.Wait()
}

// opContext bounds one operation by --timeout, as etcd's benchmark bounds
// each of its calls.
func (b *bench) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.o.client.timeout)
}

// firstError returns the first non-nil error of errs: one failure explains
// the rest (they are usually the same), and keeps the message one sentence.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
