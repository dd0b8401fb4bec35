package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/queue"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleBlockingQueue offers and takes jobs on a running cluster (it is
// compiled, not run: it needs members at those addresses; TestPackageDoc
// runs the same code in memory).
func ExampleBlockingQueue() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	r, err := useQueue(ctx, cli)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", r)
}

// queueResults are the answers of the steps of useQueue.
type queueResults struct {
	peeked, polled, empty queue.Element // Peek, Poll, Poll of the empty queue
	size                  int           // Size after the Offer
	taken                 string        // Take, served by a later Offer
	handed                bool          // that Offer's answer
}

// useQueue is the code of the package documentation.
func useQueue(ctx context.Context, cli *client.Client) (queueResults, error) {
	var r queueResults
	q, err := queue.OpenBlocking(ctx, cli, "jobs")
	if err != nil {
		return r, err
	}
	defer q.Close()
	if _, err := q.Offer(ctx, []byte("job-1")); err != nil {
		return r, err
	}
	if r.peeked, err = q.Peek(ctx); err != nil {
		return r, err
	}
	if r.size, err = q.Size(ctx); err != nil {
		return r, err
	}
	if r.polled, err = q.Poll(ctx); err != nil {
		return r, err
	}
	if r.empty, err = q.Poll(ctx); err != nil { // Ok false: empty
		return r, err
	}

	// A producer offers the next job once the Take below waits for it.
	type offered struct {
		handed bool
		err    error
	}
	handed := make(chan offered, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				handed <- offered{err: ctx.Err()}
				return
			case <-tick.C:
			}
			n, err := q.Waiting(ctx)
			if err != nil {
				handed <- offered{err: err}
				return
			}
			if n > 0 {
				ok, err := q.Offer(ctx, []byte("job-2"))
				handed <- offered{ok, err}
				return
			}
		}
	}()
	v, err := q.Take(ctx) // waits until an element comes
	if err != nil {
		return r, err
	}
	r.taken = string(v)
	o := <-handed
	r.handed = o.handed
	return r, o.err
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, queue.QueueType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := useQueue(ctx, c.Client())
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("peek %s/%v size %d poll %s/%v then %v, take %s handed %v",
		r.peeked.Value, r.peeked.Ok, r.size, r.polled.Value, r.polled.Ok, r.empty.Ok, r.taken, r.handed)
	want := "peek job-1/true size 1 poll job-1/true then false, take job-2 handed true"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}

	// The queue is empty again, and nobody waits.
	q, err := queue.OpenQueue(ctx, c.Client(), "jobs")
	if err != nil {
		t.Fatal(err)
	}
	n, err := q.Size(ctx)
	if err != nil || n != 0 {
		t.Fatalf("size %d, %v", n, err)
	}
	if n, err = q.Waiting(ctx); err != nil || n != 0 {
		t.Fatalf("waiting %d, %v", n, err)
	}
}
