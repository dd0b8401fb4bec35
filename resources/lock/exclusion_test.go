package lock_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// Longer runs: COPYCAT_LIN_SEEDS, COPYCAT_LIN_DURATION (as in
// runtime/server's TestLinearizability), or the flags.
var (
	exSeeds    = flag.Int("lin.seeds", exEnvInt("COPYCAT_LIN_SEEDS", 2), "seeds in TestExclusionUnderFaults")
	exDuration = flag.Duration("lin.duration", exEnvDuration("COPYCAT_LIN_DURATION", 3*time.Second), "how long each TestExclusionUnderFaults run injects faults")
	exSeed     = flag.Uint64("lin.seed", 0, "replay only this seed in TestExclusionUnderFaults")
)

func exEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func exEnvDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// grant is one grant as its holder observed it: from the return of Lock
// (start) to the last moment the holder checked Held and found it true
// (lastHeld; zero if it never did), and when OnLost ran, if it did.
type grant struct {
	worker   int
	session  uint64
	token    lock.Token
	start    time.Time
	lastHeld time.Time
	lostAt   time.Time
	unlock   string // Unlock's outcome
}

func (g *grant) String() string {
	s := fmt.Sprintf("worker %d session %d token %d: held %s", g.worker, g.session, g.token, g.start.Format("05.000000"))
	if g.lastHeld.IsZero() {
		s += "..(never used)"
	} else {
		s += ".." + g.lastHeld.Format("05.000000")
	}
	if !g.lostAt.IsZero() {
		s += " lost " + g.lostAt.Format("05.000000")
	}
	return s + " unlock: " + g.unlock
}

// exWorker is one client process locking and unlocking in a loop.
type exWorker struct {
	id  int
	rng *rand.Rand
	mu  sync.Mutex // guards cli, m: the nemesis cuts the current client off
	cli *client.Client
	m   *lock.Mutex
	// holding is set from Lock's return to Unlock, for the nemesis to cut
	// holders off.
	holding atomic.Bool

	locked, timedOut, lost, reconnects int
}

func (w *exWorker) current() (*client.Client, *lock.Mutex) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cli, w.m
}

func (w *exWorker) connect(c *copycattest.Cluster) error {
	cli, err := c.NewClient(client.WithClientID(fmt.Sprintf("ex-%d", w.id)), client.WithSessionTimeout(time.Second))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := lock.NewMutex(ctx, cli, "ex")
	if err != nil {
		_ = cli.Close()
		return err
	}
	w.mu.Lock()
	w.cli, w.m = cli, m
	w.mu.Unlock()
	return nil
}

// cycle runs one Lock (with a short ctx), a hold that checks Held every
// millisecond, and Unlock; it records the grant and reports whether the
// session is gone.
func (w *exWorker) cycle(record func(*grant)) (sessionGone bool) {
	cli, m := w.current()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(200+w.rng.IntN(1000))*time.Millisecond)
	defer cancel()
	hold := time.Duration(w.rng.IntN(30)) * time.Millisecond
	if w.rng.IntN(10) == 0 {
		hold = time.Duration(100+w.rng.IntN(500)) * time.Millisecond // long enough to be cut off holding
	}
	var lostMu sync.Mutex
	var lostAt time.Time
	stopLost := m.OnLost(func() {
		lostMu.Lock()
		lostAt = time.Now()
		lostMu.Unlock()
	})
	defer stopLost()
	tok, err := m.Lock(ctx)
	if err != nil {
		w.timedOut++
		return errors.Is(err, client.ErrClosed) || cli.State() == client.StateExpired || cli.State() == client.StateClosed
	}
	g := &grant{worker: w.id, session: cli.SessionID(), token: tok, start: time.Now()}
	w.locked++
	w.holding.Store(true)
	for end := g.start.Add(hold); ; {
		now := time.Now()
		if !m.Held() {
			w.lost++
			break
		}
		g.lastHeld = now // Held was true after now: the holder counted on the lock at now
		if !now.Before(end) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.holding.Store(false)
	uctx, ucancel := context.WithTimeout(context.Background(), time.Second)
	defer ucancel()
	if err := m.Unlock(uctx); err != nil {
		g.unlock = err.Error()
	} else {
		g.unlock = "ok"
	}
	lostMu.Lock()
	g.lostAt = lostAt
	lostMu.Unlock()
	record(g)
	st := cli.State()
	return st == client.StateExpired || st == client.StateClosed
}

// TestExclusionUnderFaults runs clients doing Lock (with a short ctx), a
// short hold and Unlock in a loop while a seeded copycattest.Nemesis
// partitions, crashes and restarts members and cuts clients off (the
// holder, half the time), often long enough for their sessions to expire,
// and checks the grants as their holders observed them:
//
//   - mutual exclusion: no two grants' observed holds overlap, where a hold
//     runs from Lock's return to the last time its holder found Held true
//     (a holder stops counting on the lock once Held turns false);
//   - fencing: tokens strictly increase in grant order;
//   - a grant lost before Unlock (OnLost) was lost before the next grant.
//
// This is a direct invariant check rather than a porcupine model: the
// property is about real-time intervals of holding, including holds that
// end by a loss the holder learns of from its own watchdog, which no
// sequential model of Lock/Unlock return values captures (a lost holder's
// Unlock is not an operation of the lock's sequential history), and the
// check is linear in the number of grants.
func TestExclusionUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized fault injection: skipped with -short")
	}
	seeds := []uint64{*exSeed}
	if *exSeed == 0 {
		seeds = nil
		for i := range *exSeeds {
			seeds = append(seeds, uint64(5000+i+1))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runExclusion(t, seed, *exDuration) })
	}
}

func runExclusion(t *testing.T, seed uint64, duration time.Duration) {
	replay := fmt.Sprintf("go test ./resources/lock -race -count=1 -run 'TestExclusionUnderFaults/seed=%d$' -lin.seed=%d -lin.duration=%v", seed, seed, duration)
	c := copycattest.NewClusterWith(t, 3, copycattest.Options{SnapshotEntries: 64, TrailingEntries: 16}, lock.LockType)
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	const nWorkers = 4
	workers := make([]*exWorker, nWorkers)
	for i := range workers {
		w := &exWorker{id: i, rng: rand.New(rand.NewPCG(seed, uint64(i)+1))}
		if err := w.connect(c); err != nil {
			t.Fatalf("worker %d: connect: %v", i, err)
		}
		workers[i] = w
	}
	var mu sync.Mutex
	var grants []*grant
	record := func(g *grant) {
		mu.Lock()
		grants = append(grants, g)
		mu.Unlock()
	}
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
				if !w.cycle(record) {
					continue
				}
				// The session ended; the process starts a new one.
				w.reconnects++
				_, old := w.current()
				_ = old.Close()
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

	start := time.Now()
	var nemLog []string
	// offered are the workers whose clients the nemesis was last offered to
	// cut off: it names the one it cuts by its index among them.
	var offered []*exWorker
	note := func(desc string) {
		if i, err := strconv.Atoi(strings.TrimPrefix(desc, "cut client ")); err == nil && i < len(offered) {
			w := offered[i]
			cli, _ := w.current()
			desc = fmt.Sprintf("cut client of worker %d (session %d, holding %v)", w.id, cli.SessionID(), w.holding.Load())
		}
		nemLog = append(nemLog, fmt.Sprintf("%8.3fs %s", time.Since(start).Seconds(), desc))
	}
	holderRNG := rand.New(rand.NewPCG(seed, seed*13+5))
	nem := copycattest.NewNemesis(c, rng, func() []*client.Client {
		// Half the time only the holder is offered, so that holders are cut
		// off often: a cut longer than the session timeout (1s; the
		// nemesis cuts for 0.3-2.3s) makes the cluster expire the holder's
		// session and grant the lock to the next waiter, which is what the
		// OnLost and Held checks are about.
		offered = offered[:0]
		if holderRNG.IntN(2) == 0 {
			for _, w := range workers {
				if w.holding.Load() {
					offered = append(offered, w)
				}
			}
		}
		if len(offered) == 0 {
			offered = append(offered, workers...)
		}
		out := make([]*client.Client, len(offered))
		for i, w := range offered {
			out[i], _ = w.current()
		}
		return out
	}, note)
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		nem.Step()
		for end := time.Now().Add(time.Duration(100+rng.IntN(700)) * time.Millisecond); time.Now().Before(end) && time.Now().Before(deadline); {
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
	// Every member ends with the same lock state (holder, queue, tokens),
	// including those rebuilt from live commits after a restart or snapshot.
	c.WaitConverged(20 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	var locked, timedOut, lost, reconnects int
	for _, w := range workers {
		locked += w.locked
		timedOut += w.timedOut
		lost += w.lost
		reconnects += w.reconnects
	}
	t.Logf("%d grants, %d Lock calls that failed or timed out, %d grants lost before Unlock, %d new sessions after expiry, %d nemesis events",
		locked, timedOut, lost, reconnects, len(nemLog))
	if locked < 10 {
		t.Errorf("only %d grants in %v: the cluster made little progress\nnemesis:\n%s\nreplay with: %s", locked, duration, strings.Join(nemLog, "\n"), replay)
	}

	slices.SortFunc(grants, func(a, b *grant) int { return a.start.Compare(b.start) })
	var problems []string
	var lastUsed *grant
	for i, g := range grants {
		// Fencing, over the grants their holders used: one whose Held was
		// false from the start (its session already unconfirmed for too
		// long when the grant reached it) may arrive after a later one.
		if !g.lastHeld.IsZero() {
			if lastUsed != nil && g.token <= lastUsed.token {
				problems = append(problems, fmt.Sprintf("token not increasing in grant order:\n  %s\n  %s", lastUsed, g))
			}
			lastUsed = g
		}
		if i == 0 {
			continue
		}
		prev := grants[i-1]
		for _, p := range grants[:i] {
			if !p.lastHeld.IsZero() && !p.lastHeld.Before(g.start) {
				problems = append(problems, fmt.Sprintf("overlapping holds:\n  %s\n  %s", p, g))
			}
		}
		// A grant lost before Unlock was lost before the next grant.
		if !prev.lostAt.IsZero() && !prev.lostAt.Before(g.start) {
			problems = append(problems, fmt.Sprintf("OnLost ran after the next grant:\n  %s\n  %s", prev, g))
		}
	}
	if len(problems) > 0 {
		var all []string
		for _, g := range grants {
			all = append(all, g.String())
		}
		t.Errorf("seed %d: %d violations:\n%s\ngrants:\n%s\nnemesis:\n%s\nreplay with: %s",
			seed, len(problems), strings.Join(problems[:min(10, len(problems))], "\n"), strings.Join(all, "\n"), strings.Join(nemLog, "\n"), replay)
	}
	if testing.Verbose() {
		t.Logf("nemesis:\n%s", strings.Join(nemLog, "\n"))
	}
}

// workersStuck bounds how long workers take to finish once told to stop:
// each of their calls has a deadline of a few seconds (connecting, at most
// 20s), so a worker still busy after it hangs.
const workersStuck = 30 * time.Second

// dumpPath receives a goroutine dump when workers hang.
var dumpPath = filepath.Join(os.TempDir(), "copycat-lock-stuck-goroutines.txt")

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
