package main

import (
	"context"
	"fmt"
	"time"

	"github.com/copycat-go/copycat/resources/election"
)

// Untimed trials before the timed ones, as the peers' etcd benchmark does.
const (
	uncontestedWarmup = 3
	handoverWarmup    = 2
)

// runElection measures uncontested campaigns and handovers.
func (b *bench) runElection(ctx context.Context) error {
	lats, err := b.uncontested(ctx)
	if err != nil {
		return err
	}
	b.line("copycat election", append([]string{"mode=uncontested"}, latencyFields(lats)...)...)
	lats, err = b.handover(ctx)
	if err != nil {
		return err
	}
	b.line("copycat election", append([]string{"mode=handover", msField("settle_ms", b.o.handoverSettle)}, latencyFields(lats)...)...)
	return nil
}

// openElectors connects n clients and opens an Elector for the election
// name on each; release ends them.
func (b *bench) openElectors(ctx context.Context, n int, name string) (es []*election.Elector, release func(), err error) {
	clis, err := b.connectN(ctx, n, "election")
	if err != nil {
		return nil, nil, err
	}
	release = func() {
		for _, e := range es {
			_ = e.Close()
		}
		closeAll(clis)
	}
	for _, c := range clis {
		octx, cancel := b.opContext(ctx)
		e, err := election.NewElector(octx, c.Client, name)
		cancel()
		if err != nil {
			release()
			return nil, nil, err
		}
		es = append(es, e)
	}
	return es, release, nil
}

// uncontested times Campaign with nobody else campaigning (how long it
// takes to be elected), resigning after each.
func (b *bench) uncontested(ctx context.Context) ([]time.Duration, error) {
	es, release, err := b.openElectors(ctx, 1, fmt.Sprintf("copycat-bench-%s/election/uncontested", b.runID))
	if err != nil {
		return nil, err
	}
	defer release()
	e := es[0]
	var lats []time.Duration
	for i := range b.o.electionTrials + uncontestedWarmup {
		b.prog.show(fmt.Sprintf("copycat bench: election mode=uncontested  %d/%d", i+1, b.o.electionTrials+uncontestedWarmup))
		octx, cancel := b.opContext(ctx)
		t0 := time.Now()
		_, err := e.Campaign(octx, "bench")
		d := time.Since(t0)
		if err == nil {
			err = e.Resign(octx)
		}
		cancel()
		if err != nil {
			b.prog.clear()
			return nil, fmt.Errorf("uncontested campaign %d: %w", i+1, err)
		}
		if i >= uncontestedWarmup {
			lats = append(lats, d)
		}
	}
	b.prog.clear()
	return lats, nil
}

// handover times, for two candidates on one election, the span from the
// leader calling Resign to the waiting candidate's Campaign returning
// elected; the waiter has been queued for --handover-settle. Roles
// alternate between trials.
func (b *bench) handover(ctx context.Context) ([]time.Duration, error) {
	es, release, err := b.openElectors(ctx, 2, fmt.Sprintf("copycat-bench-%s/election/handover", b.runID))
	if err != nil {
		return nil, err
	}
	defer release()
	defer b.prog.clear()
	octx, cancel := b.opContext(ctx)
	_, err = es[0].Campaign(octx, "a")
	cancel()
	if err != nil {
		return nil, fmt.Errorf("first campaign: %w", err)
	}
	leader := 0
	var lats []time.Duration
	for i := range b.o.handoverTrials + handoverWarmup {
		b.prog.show(fmt.Sprintf("copycat bench: election mode=handover  %d/%d", i+1, b.o.handoverTrials+handoverWarmup))
		d, err := b.handoverOnce(ctx, es[leader], es[1-leader])
		if err != nil {
			return nil, fmt.Errorf("handover %d: %w", i+1, err)
		}
		if i >= handoverWarmup {
			lats = append(lats, d)
		}
		leader = 1 - leader
	}
	rctx, rcancel := b.opContext(context.WithoutCancel(ctx))
	defer rcancel()
	_ = es[leader].Resign(rctx) // closing the session frees it anyway
	return lats, nil
}

// handoverOnce queues waiter behind leader, waits for the settle time,
// resigns leader and returns how long it took until waiter was elected.
func (b *bench) handoverOnce(ctx context.Context, leader, waiter *election.Elector) (time.Duration, error) {
	type elected struct {
		at  time.Time
		err error
	}
	wctx, wcancel := b.opContext(ctx)
	defer wcancel()
	done := make(chan elected, 1)
	go func() {
		_, err := waiter.Campaign(wctx, "b")
		done <- elected{time.Now(), err}
	}()
	// The handover is real only once the waiter's campaign is queued.
	for {
		qctx, cancel := b.opContext(ctx)
		info, err := leader.Leader(qctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("ask who waits: %w", err)
		}
		if info.Waiting >= 1 {
			break
		}
		select {
		case e := <-done:
			return 0, fmt.Errorf("the waiting candidate returned before the leader resigned: %v", e.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	// A standby candidate has normally been waiting for a while (and etcd
	// needs 100 ms to sync its watcher): the same settle as the peers.
	select {
	case <-time.After(b.o.handoverSettle):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	rctx, rcancel := b.opContext(ctx)
	t0 := time.Now()
	err := leader.Resign(rctx)
	rcancel()
	if err != nil {
		return 0, fmt.Errorf("resign: %w", err)
	}
	e := <-done
	if e.err != nil {
		return 0, fmt.Errorf("waiting candidate: %w", e.err)
	}
	return e.at.Sub(t0), nil
}
