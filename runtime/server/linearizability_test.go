package server_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
	"github.com/copycat-go/copycat/runtime/internal/register"
)

var (
	linSeeds    = flag.Int("lin.seeds", linEnvInt("COPYCAT_LIN_SEEDS", 3), "seeds per cluster size in TestLinearizability")
	linDuration = flag.Duration("lin.duration", linEnvDuration("COPYCAT_LIN_DURATION", 3*time.Second), "how long each TestLinearizability run injects faults")
	linSeed     = flag.Uint64("lin.seed", 0, "replay only this seed in TestLinearizability")
)

func linEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func linEnvDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Shape of one run.
const (
	linKeys        = 3                // registers, checked independently
	linOpTimeout   = time.Second      // after it, an operation's outcome is unknown
	linCheckBudget = 60 * time.Second // porcupine gives up (Unknown) after this
)

// TestLinearizability runs concurrent clients — each with its own session —
// against registers (read, write, compare-and-set) while a seeded nemesis
// partitions, isolates, crashes and restarts members (leaders included),
// drops and delays messages, and cuts clients off. The history is then
// checked with porcupine against a sequential register. A command that
// failed or whose ctx ended may or may not have taken effect: it is recorded
// with an unknown outcome and no return (porcupine may place it anywhere
// after its call, or never observe it). Reads are Linearizable or
// LinearizableLease; Sequential reads are not linearizable across clients
// and are left out.
//
// Interleavings depend on the scheduler, so a seed replays the nemesis
// schedule and each client's choice of operations, not the exact history.
func TestLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized fault injection: skipped with -short")
	}
	for _, size := range []int{3, 5} {
		var seeds []uint64
		if *linSeed != 0 {
			seeds = []uint64{*linSeed}
		} else {
			for i := range *linSeeds {
				seeds = append(seeds, uint64(1000*size+i+1))
			}
		}
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("n=%d/seed=%d", size, seed), func(t *testing.T) {
				runLinearizability(t, size, seed, *linDuration)
			})
		}
	}
}

// regInput is one register operation's input.
type regInput struct {
	op    string // "get", "put", "cas"
	key   string
	value int64 // put: value; cas: new value
	old   int64 // cas: expected value
	lease bool  // get: LinearizableLease rather than Linearizable
}

// regOutput is one register operation's output.
type regOutput struct {
	value   int64 // get
	ok      bool  // cas: swapped
	unknown bool  // the outcome is unknown (error or ctx expired)
	err     string
}

// regModel is a sequential register per key; the history is partitioned by
// key.
var regModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(regInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		s := state.(int64)
		in, out := input.(regInput), output.(regOutput)
		switch in.op {
		case "get":
			return out.value == s, s
		case "put":
			return true, in.value
		case "cas":
			if out.unknown {
				// Had it taken effect, its effect is determined by the state.
				if s == in.old {
					return true, in.value
				}
				return true, s
			}
			if out.ok {
				return s == in.old, in.value
			}
			return s != in.old, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		res := ""
		switch in.op {
		case "get":
			lvl := "lin"
			if in.lease {
				lvl = "lease"
			}
			return fmt.Sprintf("get(%s) [%s] -> %d", in.key, lvl, out.value)
		case "put":
			res = fmt.Sprintf("put(%s, %d)", in.key, in.value)
		case "cas":
			res = fmt.Sprintf("cas(%s, %d, %d)", in.key, in.old, in.value)
			if !out.unknown {
				res += fmt.Sprintf(" -> %v", out.ok)
			}
		}
		if out.unknown {
			res += " -> ? (" + out.err + ")"
		}
		return res
	},
	DescribeState: func(state any) string { return strconv.FormatInt(state.(int64), 10) },
}

// linHistory is a concurrent history with a common clock.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	notes []porcupine.Annotation // nemesis actions, for the visualization
}

func (h *linHistory) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *linHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// linWorker is one client process: a session and the registers it opened.
type linWorker struct {
	id  int
	rng *rand.Rand
	// guarded by mu: the nemesis cuts the current client off.
	mu  sync.Mutex
	cli *client.Client
	reg *register.Client
	// last value this worker saw per key, to aim its compare-and-sets.
	seen    map[string]int64
	next    int64
	readPct int // share of reads in its operations
	// Writers' sessions are short, so some the nemesis cuts off expire;
	// readers' are longer, so they send keep-alives (which only a leader
	// accepts, redirecting the client otherwise) less often and linger on a
	// member that lost leadership.
	sessionTimeout time.Duration
	// counts
	ok, unknown, failedReads, reconnects int
}

func (w *linWorker) current() (*client.Client, *register.Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cli, w.reg
}

// connect opens a new session (after the old one expired).
func (w *linWorker) connect(c *copycattest.Cluster) error {
	cli, err := c.NewClient(client.WithClientID(fmt.Sprintf("lin-%d", w.id)), client.WithSessionTimeout(w.sessionTimeout))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := register.Open(ctx, cli, "lin")
	if err != nil {
		_ = cli.Close()
		return err
	}
	w.mu.Lock()
	w.cli, w.reg = cli, reg
	w.mu.Unlock()
	return nil
}

// step runs one random operation and records it. It reports whether the
// session is gone.
func (w *linWorker) step(h *linHistory) (sessionGone bool) {
	cli, reg := w.current()
	key := string(rune('a' + w.rng.IntN(linKeys)))
	in := regInput{key: key}
	w.next++
	fresh := int64(w.id+1)*1_000_000 + w.next // every written value is unique
	switch r := w.rng.IntN(100); {
	case r < w.readPct:
		in.op = "get"
		in.lease = w.rng.IntN(2) == 0
	case r < w.readPct+(100-w.readPct)*3/5:
		in.op, in.value = "put", fresh
	default:
		in.op, in.old, in.value = "cas", w.seen[key], fresh
		if w.rng.IntN(5) == 0 {
			in.old = int64(w.rng.IntN(3)) // mostly fails; 0 may match the initial value
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
	defer cancel()
	var out regOutput
	var err error
	call := h.now()
	switch in.op {
	case "get":
		cons := runtime.Linearizable
		if in.lease {
			cons = runtime.LinearizableLease
		}
		out.value, err = reg.Get(ctx, key, client.WithConsistency(cons))
	case "put":
		err = reg.Put(ctx, key, in.value)
	case "cas":
		out.ok, err = reg.CompareAndSet(ctx, key, in.old, in.value)
	}
	ret := h.now()
	op := porcupine.Operation{ClientId: w.id, Input: in, Call: call, Return: ret, Metadata: fmt.Sprintf("worker %d (session %d)", w.id, cli.SessionID())}
	if err != nil {
		sessionGone = errors.Is(err, runtime.ErrSessionExpired) || errors.Is(err, client.ErrClosed)
		if in.op == "get" {
			w.failedReads++ // a read that did not return observed nothing
			return sessionGone
		}
		// A command may still take effect after this (the client retries
		// it in the background) or may have taken effect already.
		w.unknown++
		out.unknown, out.err = true, err.Error()
		op.Return = math.MaxInt64
		op.Output = out
		h.add(op)
		return sessionGone
	}
	w.ok++
	switch in.op {
	case "get":
		w.seen[key] = out.value
	case "put":
		w.seen[key] = in.value
	case "cas":
		if out.ok {
			w.seen[key] = in.value
		}
	}
	op.Output = out
	h.add(op)
	return false
}

func runLinearizability(t *testing.T, size int, seed uint64, duration time.Duration) {
	replay := fmt.Sprintf("go test ./runtime/server -race -count=1 -run 'TestLinearizability/n=%d/seed=%d$' -lin.seed=%d -lin.duration=%v", size, seed, seed, duration)
	// Compaction every few dozen entries: images, cleaning and snapshot
	// streams to restarted members happen among the faults.
	c := copycattest.NewClusterWith(t, size, copycattest.Options{SnapshotEntries: 64, TrailingEntries: 16}, register.Type)
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	nWorkers := size + 2
	workers := make([]*linWorker, nWorkers)
	for i := range workers {
		// Half the workers mostly write; the others only read. A reader
		// with no command in flight is the one that can observe a stale
		// member: a client's queries wait for its own earlier commands, so
		// one stuck at a deposed leader would block them.
		w := &linWorker{id: i, rng: rand.New(rand.NewPCG(seed, uint64(i)+1)), seen: map[string]int64{},
			readPct: 30, sessionTimeout: time.Second}
		if i%2 == 1 {
			w.readPct, w.sessionTimeout = 100, 4*time.Second
		}
		if err := w.connect(c); err != nil {
			t.Fatalf("worker %d: connect: %v", i, err)
		}
		workers[i] = w
	}
	h := &linHistory{start: time.Now()}
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	stopWorkers := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	// Registered after the cluster's own cleanup, so it runs first: a
	// failure midway does not leave workers running on a closed cluster.
	t.Cleanup(stopWorkers)
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !w.step(h) {
					continue
				}
				// The session expired; the process starts a new one.
				w.reconnects++
				for w.connect(c) != nil {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}

	var nemLog []string
	note := func(desc string) {
		at := h.now()
		nemLog = append(nemLog, fmt.Sprintf("%8.3fs %s", float64(at)/1e9, desc))
		h.mu.Lock()
		h.notes = append(h.notes, porcupine.Annotation{Tag: "nemesis", Start: at, End: at, Description: desc})
		h.mu.Unlock()
	}
	nem := copycattest.NewNemesis(c, rng, func() []*client.Client {
		var out []*client.Client
		for _, w := range workers {
			cli, _ := w.current()
			out = append(out, cli)
		}
		return out
	}, note)
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		// A phase: one more fault, held for a while (long enough for a
		// new leader to be elected and for clients to find it), then
		// usually healed.
		nem.Step()
		for end := time.Now().Add(time.Duration(100+rng.IntN(1500)) * time.Millisecond); time.Now().Before(end) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			nem.Undo(false)
		}
		if rng.IntN(10) < 6 {
			nem.Heal()
			note("heal")
		}
	}
	// Heal everything and let the workers finish their last operations.
	nem.Heal()
	nem.Undo(true)
	note("heal all")
	stopWorkers()
	c.WaitLeader(10 * time.Second)

	// Final reads, after everything healed, pin down what the unknown
	// commands did.
	final, err := c.NewClient()
	if err != nil {
		t.Fatalf("final client: %v\nnemesis:\n%s\nreplay with: %s", err, strings.Join(nemLog, "\n"), replay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	freg, err := register.Open(ctx, final, "lin")
	if err != nil {
		t.Fatalf("final open: %v\nreplay with: %s", err, replay)
	}
	for k := range linKeys {
		key := string(rune('a' + k))
		call := h.now()
		v, err := freg.Get(ctx, key)
		if err != nil {
			t.Fatalf("final read of %s after healing: %v\nnemesis:\n%s\nreplay with: %s", key, err, strings.Join(nemLog, "\n"), replay)
		}
		h.add(porcupine.Operation{ClientId: nWorkers, Input: regInput{op: "get", key: key}, Call: call,
			Output: regOutput{value: v}, Return: h.now(), Metadata: "final read"})
	}

	// Every member ends with the same state, whichever way it got there.
	c.WaitConverged(20 * time.Second)
	var images, streams int
	for _, id := range c.IDs() {
		images += c.Member(id).Server().CompactionStats().Compactions
		streams += c.Member(id).Server().SnapshotStats().Received
	}
	t.Logf("log compaction: %d compaction points made durable, %d snapshots installed from a leader", images, streams)

	var ok, unknown, failedReads, reconnects int
	for _, w := range workers {
		ok += w.ok
		unknown += w.unknown
		failedReads += w.failedReads
		reconnects += w.reconnects
	}
	t.Logf("history: %d operations checked (%d completed, %d with unknown outcome), %d reads failed or timed out (not recorded), %d new sessions after expiry, %d nemesis events",
		len(h.ops), ok+linKeys, unknown, failedReads, reconnects, len(nemLog))
	if ok < 10*nWorkers {
		t.Errorf("only %d operations completed in %v: the cluster made little progress\nnemesis:\n%s\nreplay with: %s", ok, duration, strings.Join(nemLog, "\n"), replay)
	}

	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(regModel, h.ops, linCheckBudget)
	t.Logf("porcupine: %s in %v", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		if testing.Verbose() {
			t.Logf("nemesis:\n%s", strings.Join(nemLog, "\n"))
		}
	case porcupine.Unknown:
		t.Logf("porcupine could not decide within %v: inconclusive, not a failure (seed %d)", linCheckBudget, seed)
	case porcupine.Illegal:
		info.AddAnnotations(h.notes)
		path := filepath.Join(os.TempDir(), fmt.Sprintf("copycat-linearizability-n%d-seed%d-%d.html", size, seed, time.Now().UnixNano()))
		if err := porcupine.VisualizePath(regModel, info, path); err != nil {
			path = "(visualization failed: " + err.Error() + ")"
		}
		t.Errorf("history is NOT linearizable (n=%d, seed=%d)\n%s\nvisualization: %s\nnemesis:\n%s\nreplay with: %s",
			size, seed, violation(h.ops, info), path, strings.Join(nemLog, "\n"), replay)
	}
}

// violation describes where the longest partial linearization of each
// non-linearizable register stops: its last operations, and the operations
// called next that could not be placed after them.
func violation(history []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var b strings.Builder
	type opID struct {
		client int
		call   int64
	}
	for _, partials := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, p := range partials {
			if len(p) > len(longest) {
				longest = p
			}
		}
		if len(longest) == 0 {
			continue
		}
		key := longest[0].Input.(regInput).key
		placed := map[opID]bool{}
		for _, op := range longest {
			placed[opID{op.ClientId, op.Call}] = true
		}
		var rest []porcupine.Operation
		for _, op := range history {
			if op.Input.(regInput).key == key && !placed[opID{op.ClientId, op.Call}] {
				rest = append(rest, op)
			}
		}
		if len(rest) == 0 {
			continue // this register is linearizable
		}
		slices.SortFunc(rest, func(x, y porcupine.Operation) int { return cmp.Compare(x.Call, y.Call) })
		fmt.Fprintf(&b, "register %q: %d of %d operations linearized; the last of them:\n", key, len(longest), len(longest)+len(rest))
		for _, op := range longest[max(0, len(longest)-6):] {
			fmt.Fprintf(&b, "    %s\n", describeOp(op))
		}
		b.WriteString("  then none of these fits (earliest calls first):\n")
		for _, op := range rest[:min(6, len(rest))] {
			fmt.Fprintf(&b, "    %s\n", describeOp(op))
		}
	}
	return b.String()
}

func describeOp(op porcupine.Operation) string {
	ret := "pending"
	if op.Return != math.MaxInt64 {
		ret = fmt.Sprintf("%.6fs", float64(op.Return)/1e9)
	}
	return fmt.Sprintf("[%.6fs, %s] %v: %s", float64(op.Call)/1e9, ret, op.Metadata, regModel.DescribeOperation(op.Input, op.Output))
}
