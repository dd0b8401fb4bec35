package election_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/election"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleElector runs for leadership on a running cluster (it is compiled,
// not run: it needs members at those addresses; TestPackageDoc runs the
// same code in memory).
func ExampleElector() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	if err := lead(ctx, cli, func(job int, term election.Term) {
		fmt.Println("job", job, "in term", term)
	}); err != nil {
		panic(err)
	}
}

// lead is the code of the package documentation.
func lead(ctx context.Context, cli *client.Client, write func(job int, term election.Term)) error {
	e, err := election.NewElector(ctx, cli, "payments")
	if err != nil {
		return err
	}
	var changes atomic.Int32
	unwatch, err := e.Observe(ctx, func(c election.Changed) { changes.Add(1) })
	if err != nil {
		return err
	}
	term, err := e.Campaign(ctx, "node-1") // waits until elected
	if err != nil {
		return err
	}
	var aborted atomic.Bool
	stop := e.OnLost(func() { aborted.Store(true) }) // e.g. abort the work in flight
	defer stop()
	if err := e.Proclaim(ctx, []byte("10.0.0.1:8080")); err != nil {
		return err
	}
	for job := range 3 {
		if !e.IsLeader() {
			break // another candidate may lead soon: stop acting as leader
		}
		write(job, term) // the store refuses terms lower than it has seen
	}
	info, err := e.Leader(ctx)
	if err != nil {
		return err
	}
	if info.Term != uint64(term) || string(info.Value) != "10.0.0.1:8080" {
		return fmt.Errorf("leader %+v, want term %d", info, term)
	}
	if err := e.Resign(ctx); err != nil { // the next candidate is elected at once
		return err
	}
	return unwatch(ctx)
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, election.ElectionType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var jobs []int
	err := lead(ctx, c.Client(), func(job int, term election.Term) {
		if term == 0 {
			t.Error("zero term")
		}
		jobs = append(jobs, job)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 3 {
		t.Fatalf("jobs %v", jobs)
	}
}
