package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/resources/election"
	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
)

func newDemo() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a 3-member cluster in this process and show a lock, a map and an election surviving a leader crash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			return runDemo(ctx, cmd.OutOrStdout(), keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the data directory instead of deleting it")
	return cmd
}

const demoCluster = "copycat-demo"

// demo is the state of one demo run.
type demo struct {
	out     io.Writer
	dir     string
	members []raft.Member
	servers map[uint64]*server.Server
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demo) start(id uint64, boot bool) error {
	m := d.members[id-1]
	srv, err := server.New(server.Config{
		ID: id, ClusterID: demoCluster, Addr: m.Addr,
		DataDir: filepath.Join(d.dir, fmt.Sprintf("member-%d", id)),
	}, builtins...)
	if err != nil {
		return fmt.Errorf("start member %d: %w", id, err)
	}
	if boot {
		err = srv.Bootstrap(d.members)
	} else {
		err = srv.Start()
	}
	if err != nil {
		srv.Stop()
		return fmt.Errorf("start member %d: %w", id, err)
	}
	d.servers[id] = srv
	return nil
}

// leader waits until a running member leads and returns it.
func (d *demo) leader(ctx context.Context) (uint64, error) {
	for {
		for id, srv := range d.servers {
			if srv.IsLeader() {
				return id, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, errors.New("no member became leader in time")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		out = append(out, ln.Addr().String())
		ln.Close()
	}
	return out, nil
}

func runDemo(ctx context.Context, out io.Writer, keep bool) (err error) {
	dir, err := os.MkdirTemp("", "copycat-demo-")
	if err != nil {
		return fmt.Errorf("create a data directory: %w", err)
	}
	d := &demo{out: out, dir: dir, servers: map[uint64]*server.Server{}}
	defer func() {
		for _, srv := range d.servers {
			srv.Stop()
		}
		if keep {
			d.say("data kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	addrs, err := freeAddrs(3)
	if err != nil {
		return err
	}
	for i, a := range addrs {
		d.members = append(d.members, raft.Member{ID: uint64(i + 1), Addr: a})
	}
	d.say("Starting 3 members on %s, %s, %s with their logs in %s (fsync on).", addrs[0], addrs[1], addrs[2], dir)
	began := time.Now()
	for id := uint64(1); id <= 3; id++ {
		if err := d.start(id, true); err != nil {
			return err
		}
	}
	lead, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("Member %d was elected leader after %v.", lead, time.Since(began).Round(time.Millisecond))

	connect := func(name string) (*client.Client, error) {
		c, err := client.Connect(ctx, addrs, client.WithClusterID(demoCluster), client.WithClientID(name))
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", name, err)
		}
		return c, nil
	}
	alice, err := connect("alice")
	if err != nil {
		return err
	}
	defer alice.Close()
	bob, err := connect("bob")
	if err != nil {
		return err
	}
	defer bob.Close()
	d.say("Clients alice (session %d) and bob (session %d) are connected.", alice.SessionID(), bob.SessionID())

	// A lock with fencing tokens.
	la, err := lock.NewMutex(ctx, alice, "orders")
	if err != nil {
		return err
	}
	lb, err := lock.NewMutex(ctx, bob, "orders")
	if err != nil {
		return err
	}
	tokA, err := la.Lock(ctx)
	if err != nil {
		return fmt.Errorf("alice's lock: %w", err)
	}
	d.say("lock    alice takes lock \"orders\": fencing token %d.", tokA)
	if _, ok, err := lb.TryLock(ctx, 200*time.Millisecond); err != nil {
		return fmt.Errorf("bob's try: %w", err)
	} else if ok {
		return errors.New("bob got the lock while alice held it")
	}
	d.say("lock    bob tries for 200ms and is refused: alice holds it.")
	if err := la.Unlock(ctx); err != nil {
		return fmt.Errorf("alice's unlock: %w", err)
	}
	tokB, err := lb.Lock(ctx)
	if err != nil {
		return fmt.Errorf("bob's lock: %w", err)
	}
	d.say("lock    alice releases it; bob takes it with token %d (tokens only grow).", tokB)

	// A map.
	ma, err := dmap.OpenMap(ctx, alice, "config")
	if err != nil {
		return err
	}
	mb, err := dmap.OpenMap(ctx, bob, "config")
	if err != nil {
		return err
	}
	if _, err := ma.Put(ctx, "feature", []byte("on"), 0); err != nil {
		return fmt.Errorf("map put: %w", err)
	}
	v, err := mb.Get(ctx, "feature")
	if err != nil {
		return fmt.Errorf("map get: %w", err)
	}
	d.say("map     alice puts feature=on; bob reads feature=%s.", v)

	// An election.
	ea, err := election.NewElector(ctx, alice, "scheduler")
	if err != nil {
		return err
	}
	term, err := ea.Campaign(ctx, "alice")
	if err != nil {
		return fmt.Errorf("alice's campaign: %w", err)
	}
	d.say("elect   alice wins the election \"scheduler\" with term %d.", term)

	// The leader dies.
	d.say("Killing the leader, member %d, without warning...", lead)
	killed := time.Now()
	d.servers[lead].Stop()
	delete(d.servers, lead)
	next, err := d.leader(ctx)
	if err != nil {
		return err
	}
	d.say("Member %d took over after %v.", next, time.Since(killed).Round(time.Millisecond))

	if err := lb.Unlock(ctx); err != nil {
		return fmt.Errorf("bob's unlock after the crash: %w", err)
	}
	tokA2, err := la.Lock(ctx)
	if err != nil {
		return fmt.Errorf("alice's lock after the crash: %w", err)
	}
	if tokA2 <= tokB {
		return fmt.Errorf("token %d after the crash is not above %d", tokA2, tokB)
	}
	d.say("lock    bob releases and alice takes the lock again: token %d > %d.", tokA2, tokB)
	v, err = mb.Get(ctx, "feature")
	if err != nil {
		return fmt.Errorf("map get after the crash: %w", err)
	}
	if string(v) != "on" {
		return fmt.Errorf("the map lost a write: feature=%q", v)
	}
	if _, err := mb.Put(ctx, "feature", []byte("off"), 0); err != nil {
		return fmt.Errorf("map put after the crash: %w", err)
	}
	d.say("map     feature is still %q; bob sets it to \"off\".", "on")
	info, err := ea.Leader(ctx)
	if err != nil {
		return fmt.Errorf("election after the crash: %w", err)
	}
	if info.Candidate != "alice" || info.Term != uint64(term) || !ea.IsLeader() {
		return fmt.Errorf("the election changed across the crash: %+v", info)
	}
	d.say("elect   alice still leads \"scheduler\" (term %d): her session outlived the leader.", info.Term)

	// The old leader comes back.
	d.say("Restarting member %d from its data directory...", lead)
	if err := d.start(lead, false); err != nil {
		return err
	}
	want := d.servers[next].Status().HardState.Commit
	for d.servers[lead].Status().Applied < want {
		select {
		case <-ctx.Done():
			return fmt.Errorf("member %d did not catch up", lead)
		case <-time.After(10 * time.Millisecond):
		}
	}
	d.say("Member %d caught up: it has applied index %d.", lead, d.servers[lead].Status().Applied)
	if err := la.Unlock(ctx); err != nil {
		return fmt.Errorf("alice's final unlock: %w", err)
	}
	d.say("OK: a lock, a map and an election carried on across a leader crash and a restart, with no write lost (%v).",
		time.Since(began).Round(time.Millisecond))
	return nil
}
