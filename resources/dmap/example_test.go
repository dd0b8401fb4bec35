package dmap_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleMapClient writes, lists and watches a map on a running cluster (it
// is compiled, not run: it needs members at those addresses;
// TestPackageDoc runs the same code in memory).
func ExampleMapClient() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	entries, err := useMap(ctx, cli, 100, func(e dmap.Changed) {
		fmt.Println(e.Kind, e.Key, string(e.New))
	})
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		fmt.Println(e.Key, string(e.Value))
	}
}

// useMap is the code of the package documentation: it returns every entry,
// listed by pages of pageSize.
func useMap(ctx context.Context, cli *client.Client, pageSize int, seen func(dmap.Changed)) ([]dmap.Entry, error) {
	m, err := dmap.OpenMap(ctx, cli, "sessions")
	if err != nil {
		return nil, err
	}
	stop, err := m.Watch(ctx, []string{"a"}, seen) // events of key "a" only
	if err != nil {
		return nil, err
	}
	if _, err := m.Put(ctx, "a", []byte("1"), 0); err != nil { // no expiry
		return nil, err
	}
	ok, err := m.PutIfAbsent(ctx, "b", []byte("2"), time.Minute)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("b was present")
	}
	v, err := m.Get(ctx, "a")
	if err != nil {
		return nil, err
	}
	if string(v) != "1" {
		return nil, fmt.Errorf("a is %q, want 1", v)
	}
	old, err := m.Put(ctx, "a", []byte("3"), 0)
	if err != nil {
		return nil, err
	}
	if string(old) != "1" {
		return nil, fmt.Errorf("Put returned %q, want 1", old)
	}

	var entries []dmap.Entry
	page, err := m.Entries(ctx, "", pageSize) // first page, by key
	for {
		if err != nil {
			return nil, err
		}
		entries = append(entries, page.Entries...)
		if !page.More {
			break
		}
		page, err = m.Entries(ctx, page.Next, pageSize)
	}
	return entries, stop(ctx)
}

// User is a value of a typed map.
type User struct {
	Name  string
	Langs []string
}

// ExampleTyped stores Go values in a map on a running cluster (it is
// compiled, not run; TestPackageDoc runs the same code in memory).
func ExampleTyped() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	u, err := useTyped(ctx, cli)
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Name, u.Langs)
}

// useTyped is the code of the package documentation for Typed.
func useTyped(ctx context.Context, cli *client.Client) (User, error) {
	users, err := dmap.OpenTyped[User](ctx, cli, "users")
	if err != nil {
		return User{}, err
	}
	if err := users.Set(ctx, "ada", User{Name: "Ada", Langs: []string{"Analytical Engine"}}, 0); err != nil {
		return User{}, err
	}
	u, ok, err := users.Get(ctx, "ada")
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, fmt.Errorf("ada is missing")
	}
	return u, nil
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, dmap.MapType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var mu sync.Mutex
	var events []string
	entries, err := useMap(ctx, c.Client(), 1, func(e dmap.Changed) {
		mu.Lock()
		events = append(events, fmt.Sprintf("%v %s %s->%s", e.Kind, e.Key, e.Old, e.New))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(entries), "[{a [51]} {b [50]}]"; got != want {
		t.Errorf("entries %s, want %s", got, want)
	}
	mu.Lock()
	// Unlisten's response follows every event published before it; b is
	// not watched.
	if got, want := fmt.Sprint(events), "[inserted a ->1 updated a 1->3]"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	mu.Unlock()

	u, err := useTyped(ctx, c.Client())
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "Ada" || fmt.Sprint(u.Langs) != "[Analytical Engine]" {
		t.Errorf("user %+v", u)
	}
}
