package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
)

// `copycat server --join` adds a new member to a running cluster: it learns
// the members' addresses from the cluster's status (the transport needs
// them before the log says who is in the cluster), starts, asks the leader
// to add it as PASSIVE, and once it has caught up promotes itself to ACTIVE
// (unless --passive), retrying while the leader answers "not caught up".

// parseJoin splits --join into host:port addresses.
func parseJoin(s string) ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := checkHostPort(a); err != nil {
			return nil, fmt.Errorf("--join entry %q is not a host:port address", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("--join needs the address of at least one member of the cluster")
	}
	return out, nil
}

// joiner carries a joining member through its add and promotion.
type joiner struct {
	o      serverOptions
	log    *slog.Logger
	admin  *client.Admin
	peers  map[uint64]string
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// startJoin connects to the cluster at --join and learns its members'
// addresses, within --join-timeout. It refuses an ID the cluster already
// gives another address.
func startJoin(ctx context.Context, o serverOptions, tlsCfg *tls.Config, logger *slog.Logger) (*joiner, error) {
	addrs, err := parseJoin(o.join)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithClusterID(o.clusterID), client.WithLogger(logger),
		client.WithBackoff(50*time.Millisecond, 2*time.Second)}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	jctx, cancel := context.WithTimeout(ctx, o.joinTimeout)
	defer cancel()
	a, err := client.DialAdmin(jctx, addrs, opts...)
	if err != nil {
		return nil, joinError(o, "cannot reach the cluster", err)
	}
	st, err := a.Status(jctx)
	if err != nil {
		a.Close()
		return nil, joinError(o, "cannot get the cluster's status", err)
	}
	j := &joiner{o: o, log: logger, admin: a, peers: map[uint64]string{}}
	for _, m := range st.Members {
		if m.ID == o.id {
			if m.Addr != o.advertise {
				a.Close()
				return nil, fmt.Errorf("member %d cannot join: the cluster already has a member %d at %s, not %s; pick another --id or remove that member first",
					o.id, m.ID, m.Addr, o.advertise)
			}
			continue
		}
		j.peers[m.ID] = m.Addr
	}
	logger.Info("joining the cluster", "via", st.Addr, "leader", st.Leader, "members", len(st.Members))
	return j, nil
}

// add asks the leader to add this member as PASSIVE, within --join-timeout.
// A retry after a crash (the member is already there, PASSIVE at this
// address) succeeds.
func (j *joiner) add(ctx context.Context) error {
	jctx, cancel := context.WithTimeout(ctx, j.o.joinTimeout)
	defer cancel()
	if err := j.admin.AddMember(jctx, j.o.id, j.o.advertise, raft.Passive); err != nil {
		return joinError(j.o, "the cluster did not add it", err)
	}
	j.log.Info("added to the cluster as PASSIVE; catching up", "member", j.o.id, "addr", j.o.advertise)
	return nil
}

// promoteInBackground promotes the member to ACTIVE once it has caught up,
// retrying with backoff until --join-timeout; failing that it stays
// PASSIVE and says so (an operator can run `copycat cluster promote`).
func (j *joiner) promoteInBackground(ctx context.Context) {
	ctx, j.cancel = context.WithTimeout(ctx, j.o.joinTimeout)
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		began := time.Now()
		if err := j.admin.PromoteWhenCaughtUp(ctx, j.o.id); err != nil {
			if errors.Is(err, context.Canceled) {
				return // stopping
			}
			j.log.Error("not promoted to ACTIVE; the member stays PASSIVE (promote it with `copycat cluster promote --wait`)",
				"member", j.o.id, "err", err)
			return
		}
		j.log.Info("caught up and promoted to ACTIVE", "member", j.o.id, "after", time.Since(began).Round(time.Millisecond))
	}()
}

// close stops the promotion, if any, and closes the connection.
func (j *joiner) close() {
	if j.cancel != nil {
		j.cancel()
	}
	j.wg.Wait()
	j.admin.Close()
}

// joinError says in one sentence why the member could not join.
func joinError(o serverOptions, what string, err error) error {
	var ae *client.AdminError
	switch {
	case errors.As(err, &ae):
		return fmt.Errorf("member %d cannot join the cluster at %s: %s: %s", o.id, o.join, what, strings.TrimPrefix(ae.Message, ae.Err.Error()+": "))
	case errors.Is(err, context.DeadlineExceeded):
		msg := fmt.Sprintf("member %d cannot join the cluster at %s: %s within --join-timeout %v", o.id, o.join, what, o.joinTimeout)
		if last := lastFailure(err); last != nil {
			msg += fmt.Sprintf(" (last error: %s)", innermost(last))
		}
		return errors.New(msg)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("member %d: interrupted while joining the cluster", o.id)
	}
	return fmt.Errorf("member %d cannot join the cluster at %s: %s: %w", o.id, o.join, what, err)
}

// peerAddrs returns the members' addresses to seed the transport with; nil
// when not joining.
func (j *joiner) peerAddrs() map[uint64]string {
	if j == nil {
		return nil
	}
	return j.peers
}
