package dmap_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// The shape of TestMapLinearizability follows runtime/server's
// TestLinearizability (a register test); the environment variables are the
// same, for longer runs: COPYCAT_LIN_SEEDS, COPYCAT_LIN_DURATION.
var (
	linSeeds    = flag.Int("lin.seeds", linEnvInt("COPYCAT_LIN_SEEDS", 2), "seeds in TestMapLinearizability")
	linDuration = flag.Duration("lin.duration", linEnvDuration("COPYCAT_LIN_DURATION", 3*time.Second), "how long each TestMapLinearizability run injects faults")
	linSeed     = flag.Uint64("lin.seed", 0, "replay only this seed in TestMapLinearizability")
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

const (
	linKeys        = 3
	linOpTimeout   = time.Second
	linCheckBudget = 60 * time.Second
)

// mapInput is one map operation on one key.
type mapInput struct {
	op     string // get, put, putIfAbsent, replace, cas, remove
	key    string
	value  string // written value (unique per write)
	expect string // cas
	lease  bool   // get: LinearizableLease rather than Linearizable
}

// mapOutput is what the operation returned.
type mapOutput struct {
	value   string // get: the value; put, remove: the old value
	has     bool   // get: the key had a value; put, remove: there was an old value
	ok      bool   // putIfAbsent, replace, cas: the write happened
	unknown bool   // error or ctx expired: the command may or may not have taken effect
	err     string
}

// keyState is one key of the sequential map.
type keyState struct {
	has bool
	v   string
}

// mapModel is a sequential map, checked key by key (keys are independent).
var mapModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(mapInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range byKey {
				if !yield(k) {
					return
				}
			}
		}) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return keyState{} },
	Step: func(state, input, output any) (bool, any) {
		s := state.(keyState)
		in, out := input.(mapInput), output.(mapOutput)
		set := keyState{has: true, v: in.value}
		// cond says whether a conditional write applies to s.
		var cond bool
		switch in.op {
		case "get":
			return out.has == s.has && out.value == s.v, s
		case "put":
			if out.unknown {
				return true, set
			}
			return out.has == s.has && out.value == s.v, set
		case "remove":
			if out.unknown {
				return true, keyState{}
			}
			return out.has == s.has && out.value == s.v, keyState{}
		case "putIfAbsent":
			cond = !s.has
		case "replace":
			cond = s.has
		case "cas":
			cond = s.has && s.v == in.expect
		default:
			return false, s
		}
		next := s
		if cond {
			next = set
		}
		if out.unknown {
			return true, next // had it taken effect, the state decides what it did
		}
		return out.ok == cond, next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(mapInput), output.(mapOutput)
		var res string
		switch in.op {
		case "get":
			lvl := "lin"
			if in.lease {
				lvl = "lease"
			}
			res = fmt.Sprintf("get(%s) [%s]", in.key, lvl)
		case "remove":
			res = fmt.Sprintf("remove(%s)", in.key)
		case "cas":
			res = fmt.Sprintf("cas(%s, %q, %q)", in.key, in.expect, in.value)
		default:
			res = fmt.Sprintf("%s(%s, %q)", in.op, in.key, in.value)
		}
		switch {
		case out.unknown:
			res += " -> ? (" + out.err + ")"
		case in.op == "get" || in.op == "put" || in.op == "remove":
			if out.has {
				res += fmt.Sprintf(" -> %q", out.value)
			} else {
				res += " -> none"
			}
		default:
			res += fmt.Sprintf(" -> %v", out.ok)
		}
		return res
	},
	DescribeState: func(state any) string {
		if s := state.(keyState); s.has {
			return strconv.Quote(s.v)
		}
		return "none"
	},
}

// linHistory is a concurrent history with a common clock.
type linHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	notes []porcupine.Annotation
}

func (h *linHistory) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *linHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// mapWorker is one client process: a session and the map it opened.
type mapWorker struct {
	id  int
	rng *rand.Rand
	mu  sync.Mutex // guards cli, m: the nemesis cuts the current client off
	cli *client.Client
	m   *dmap.MapClient
	// the last value this worker saw per key, to aim its conditional writes
	seen                                 map[string]string
	next                                 int
	readPct                              int
	sessionTimeout                       time.Duration
	ok, unknown, failedReads, reconnects int
}

func (w *mapWorker) current() (*client.Client, *dmap.MapClient) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cli, w.m
}

func (w *mapWorker) connect(c *copycattest.Cluster) error {
	cli, err := c.NewClient(client.WithClientID(fmt.Sprintf("lin-%d", w.id)), client.WithSessionTimeout(w.sessionTimeout))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := dmap.OpenMap(ctx, cli, "lin")
	if err != nil {
		_ = cli.Close()
		return err
	}
	w.mu.Lock()
	w.cli, w.m = cli, m
	w.mu.Unlock()
	return nil
}

// step runs one random operation and records it; it reports whether the
// session is gone.
func (w *mapWorker) step(h *linHistory) (sessionGone bool) {
	cli, m := w.current()
	key := string(rune('a' + w.rng.IntN(linKeys)))
	w.next++
	in := mapInput{key: key, value: fmt.Sprintf("w%d-%d", w.id, w.next)} // every written value is unique
	switch r := w.rng.IntN(100); {
	case r < w.readPct:
		in.op, in.lease = "get", w.rng.IntN(2) == 0
	default:
		switch w.rng.IntN(10) {
		case 0, 1:
			in.op = "put"
		case 2, 3:
			in.op = "putIfAbsent"
		case 4, 5:
			in.op = "replace"
		case 6, 7, 8:
			in.op, in.expect = "cas", w.seen[key]
			if w.rng.IntN(5) == 0 {
				in.expect = "stale"
			}
		default:
			in.op = "remove"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
	defer cancel()
	var out mapOutput
	var err error
	var old []byte
	call := h.now()
	switch in.op {
	case "get":
		cons := runtime.Linearizable
		if in.lease {
			cons = runtime.LinearizableLease
		}
		old, err = m.Get(ctx, key, client.WithConsistency(cons))
	case "put":
		old, err = m.Put(ctx, key, []byte(in.value), 0)
	case "remove":
		old, err = m.Remove(ctx, key)
	case "putIfAbsent":
		out.ok, err = m.PutIfAbsent(ctx, key, []byte(in.value), 0)
	case "replace":
		out.ok, err = m.Replace(ctx, key, []byte(in.value), 0)
	case "cas":
		out.ok, err = m.CompareAndReplace(ctx, key, []byte(in.expect), []byte(in.value), 0)
	}
	ret := h.now()
	// Values are never empty, so nil means no value.
	out.value, out.has = string(old), old != nil
	op := porcupine.Operation{ClientId: w.id, Input: in, Call: call, Return: ret, Metadata: fmt.Sprintf("worker %d (session %d)", w.id, cli.SessionID())}
	if err != nil {
		sessionGone = errors.Is(err, runtime.ErrSessionExpired) || errors.Is(err, client.ErrClosed)
		if in.op == "get" {
			w.failedReads++
			return sessionGone
		}
		w.unknown++
		op.Output = mapOutput{unknown: true, err: err.Error()}
		op.Return = math.MaxInt64
		h.add(op)
		return sessionGone
	}
	w.ok++
	switch {
	case in.op == "get" || in.op == "remove":
		w.seen[key] = "" // remove: gone; get: the value seen (below)
		if in.op == "get" {
			w.seen[key] = out.value
		}
	case in.op == "put" || out.ok:
		w.seen[key] = in.value
	}
	op.Output = out
	h.add(op)
	return false
}

// TestMapLinearizability runs concurrent clients, each with its own
// session, doing Get, Put, PutIfAbsent, Replace, CompareAndReplace and
// Remove on a few keys while a seeded nemesis partitions, isolates, crashes
// and restarts members, drops and delays messages and cuts clients off. The
// history is checked with porcupine against a sequential map, key by key.
// A command that failed or whose ctx ended is recorded with an unknown
// outcome (porcupine may place it anywhere after its call, or never); a
// failed read observed nothing and is left out.
func TestMapLinearizability(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized fault injection: skipped with -short")
	}
	seeds := []uint64{*linSeed}
	if *linSeed == 0 {
		seeds = nil
		for i := range *linSeeds {
			seeds = append(seeds, uint64(3000+i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runMapLinearizability(t, 3, seed, *linDuration) })
	}
}

func runMapLinearizability(t *testing.T, size int, seed uint64, duration time.Duration) {
	replay := fmt.Sprintf("go test ./resources/dmap -race -count=1 -run 'TestMapLinearizability/seed=%d$' -lin.seed=%d -lin.duration=%v", seed, seed, duration)
	// Compaction every few dozen entries: the map is rebuilt from its live
	// commits on members that restart or catch up by snapshot, among the faults.
	c := copycattest.NewClusterWith(t, size, copycattest.Options{SnapshotEntries: 64, TrailingEntries: 16}, dmap.MapType)
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	nWorkers := size + 2
	workers := make([]*mapWorker, nWorkers)
	for i := range workers {
		// Most workers write; odd ones only read, with longer sessions (a
		// reader with no command in flight is the one that can observe a
		// stale member).
		w := &mapWorker{id: i, rng: rand.New(rand.NewPCG(seed, uint64(i)+1)), seen: map[string]string{},
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
	stopWorkers := func() bool {
		stopOnce.Do(func() { close(stop) })
		return waitOrDump(&wg, workersStuck)
	}
	t.Cleanup(func() { stopWorkers() }) // runs before the cluster's cleanup
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
	nem.Heal()
	nem.Undo(true)
	note("heal all")
	if !stopWorkers() {
		t.Fatalf("workers still busy %v after the end of the run: a client hangs (goroutines dumped to %s)\nnemesis:\n%s\nreplay with: %s",
			workersStuck, dumpPath, strings.Join(nemLog, "\n"), replay)
	}
	c.WaitLeader(10 * time.Second)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nnemesis:\n%s\nreplay with: %s", append(args, strings.Join(nemLog, "\n"), replay)...)
	}

	// Final reads, after healing, pin down what the unknown commands did.
	final, err := c.NewClient()
	if err != nil {
		fail("final client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	fm, err := dmap.OpenMap(ctx, final, "lin")
	if err != nil {
		fail("final open: %v", err)
	}
	for k := range linKeys {
		key := string(rune('a' + k))
		call := h.now()
		v, err := fm.Get(ctx, key)
		if err != nil {
			fail("final read of %s after healing: %v", key, err)
		}
		h.add(porcupine.Operation{ClientId: nWorkers, Input: mapInput{op: "get", key: key}, Call: call,
			Output: mapOutput{value: string(v), has: v != nil}, Return: h.now(), Metadata: "final read"})
	}

	var ok, unknown, failedReads, reconnects int
	for _, w := range workers {
		ok += w.ok
		unknown += w.unknown
		failedReads += w.failedReads
		reconnects += w.reconnects
	}
	// Every member ends with the same state, whichever way it got there.
	c.WaitConverged(20 * time.Second)
	t.Logf("history: %d operations checked (%d completed, %d with unknown outcome), %d reads failed (not recorded), %d new sessions after expiry, %d nemesis events",
		len(h.ops), ok+linKeys, unknown, failedReads, reconnects, len(nemLog))
	if ok < 10*nWorkers {
		t.Errorf("only %d operations completed in %v: the cluster made little progress\nnemesis:\n%s\nreplay with: %s", ok, duration, strings.Join(nemLog, "\n"), replay)
	}

	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(mapModel, h.ops, linCheckBudget)
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
		path := filepath.Join(os.TempDir(), fmt.Sprintf("copycat-dmap-linearizability-seed%d-%d.html", seed, time.Now().UnixNano()))
		if err := porcupine.VisualizePath(mapModel, info, path); err != nil {
			path = "(visualization failed: " + err.Error() + ")"
		}
		t.Errorf("history is NOT linearizable (seed %d)\nvisualization: %s\nnemesis:\n%s\nreplay with: %s",
			seed, path, strings.Join(nemLog, "\n"), replay)
	}
}

// workersStuck bounds how long workers take to finish once told to stop:
// each of their calls has a deadline of a few seconds (connecting, at most
// 20s), so a worker still busy after it hangs.
const workersStuck = 30 * time.Second

// dumpPath receives a goroutine dump when workers hang.
var dumpPath = filepath.Join(os.TempDir(), "copycat-dmap-stuck-goroutines.txt")

// waitOrDump waits for wg up to d; on timeout it dumps every goroutine to
// dumpPath and reports false.
func waitOrDump(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		if f, err := os.Create(dumpPath); err == nil {
			_ = pprof.Lookup("goroutine").WriteTo(f, 2)
			_ = f.Close()
		}
		return false
	}
}
