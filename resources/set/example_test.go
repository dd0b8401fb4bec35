package set_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/set"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleSetClient tracks who is online on a running cluster (it is
// compiled, not run: it needs members at those addresses; TestPackageDoc
// runs the same code in memory).
func ExampleSetClient() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	members, err := useSet(ctx, cli, 100, 30*time.Second, func(e set.Changed) {
		fmt.Println(e.Kind, e.Member, e.Expired)
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(members)
}

// useSet is the code of the package documentation: bob is added for ttl,
// and the members are listed by pages of pageSize before and after bob's
// expiry.
func useSet(ctx context.Context, cli *client.Client, pageSize int, ttl time.Duration, seen func(set.Changed)) (members [2][]string, err error) {
	s, err := set.OpenSet(ctx, cli, "online")
	if err != nil {
		return members, err
	}
	stop, err := s.Watch(ctx, seen)
	if err != nil {
		return members, err
	}
	for _, add := range []struct {
		name string
		ttl  time.Duration
		want bool
	}{
		{"ada", 0, true},   // no expiry
		{"bob", ttl, true}, // gone after ttl of log time
		{"ada", 0, false},  // there already: no event
		{"cy", 0, true},    // no expiry
		{"cy", ttl, false}, // replaces cy's ttl...
		{"cy", 0, false},   // ...and makes it permanent again
	} {
		added, err := s.Add(ctx, add.name, add.ttl)
		if err != nil {
			return members, err
		}
		if added != add.want {
			return members, fmt.Errorf("Add(%s) = %v, want %v", add.name, added, add.want)
		}
	}
	ok, err := s.Contains(ctx, "ada")
	if err != nil {
		return members, err
	}
	if !ok {
		return members, fmt.Errorf("ada is missing")
	}
	if members[0], err = list(ctx, s, pageSize); err != nil {
		return members, err
	}

	// Wait for bob's expiry.
	tick := time.NewTicker(max(ttl/10, 10*time.Millisecond))
	defer tick.Stop()
	for ok := true; ok; {
		select {
		case <-ctx.Done():
			return members, ctx.Err()
		case <-tick.C:
		}
		if ok, err = s.Contains(ctx, "bob"); err != nil {
			return members, err
		}
	}
	if members[1], err = list(ctx, s, pageSize); err != nil {
		return members, err
	}
	return members, stop(ctx) // seen has had every change by now
}

// list returns every member of s, by pages of pageSize.
func list(ctx context.Context, s *set.SetClient, pageSize int) ([]string, error) {
	var all []string
	page, err := s.Members(ctx, "", pageSize) // first page, in order
	for {
		if err != nil {
			return nil, err
		}
		all = append(all, page.Members...)
		if !page.More {
			return all, nil
		}
		page, err = s.Members(ctx, page.Next, pageSize)
	}
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, set.SetType)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []string
	members, err := useSet(ctx, c.Client(), 1, time.Second, func(e set.Changed) {
		mu.Lock()
		events = append(events, fmt.Sprintf("%v %s %v", e.Kind, e.Member, e.Expired))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(members), "[[ada bob cy] [ada cy]]"; got != want {
		t.Errorf("members %s, want %s", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	// Unlisten's response follows every event published before it.
	want := "[added ada false added bob false added cy false removed bob true]"
	if got := fmt.Sprint(events); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}
