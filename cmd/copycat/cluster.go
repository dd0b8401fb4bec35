package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/transport"
)

// The cluster commands (`copycat cluster status|add|remove|promote|demote|
// transfer`) operate a running cluster through runtime/client's Admin: no
// session is opened, so they work while the cluster has no leader (status
// then shows it) and leave nothing behind.

func newClusterCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("cluster", "Show and change a running cluster's membership",
		`Show the status of a running cluster and change its membership.

"status" asks the members given by --members: it prints the leader's view
(every member's replication progress) when a leader is known, else the view
of the member that answered, which then shows that it knows no leader.

Membership changes run on the leader, whichever member is asked. A new
member joins PASSIVE (it receives the log but does not vote), catches up,
and is then promoted to ACTIVE: "add", then "promote --wait". Starting a
member with "copycat server --join" does all of that by itself.`, &f)
	// Admin requests open no session.
	_ = cmd.PersistentFlags().MarkHidden("session-timeout")
	cmd.AddCommand(newClusterStatus(&f), newClusterAdd(&f), newClusterRemove(&f),
		newClusterPromote(&f), newClusterDemote(&f), newClusterTransfer(&f))
	return cmd
}

func newClusterAdd(f *clientFlags) *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use:   "add ID ADDR",
		Short: "Add a member as PASSIVE (or --type reserve); start it with its peers' addresses",
		Long: `Add the member ID, reached at ADDR (host:port), as PASSIVE: it receives
the log and serves sequential reads but does not vote. Promote it once it has
caught up ("copycat cluster promote --wait ID"). --type reserve adds a
standby that receives nothing until promoted.

The member itself must be started with an empty data directory; "copycat
server --join" is simpler: it asks for the add, then promotes itself.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			if err := checkHostPort(args[1]); err != nil {
				return fmt.Errorf("address %q is not host:port", args[1])
			}
			var t raft.MemberType
			switch strings.ToLower(typ) {
			case "passive":
				t = raft.Passive
			case "reserve":
				t = raft.Reserve
			default:
				return fmt.Errorf("--type must be passive or reserve, not %q (members are promoted to ACTIVE once caught up)", typ)
			}
			return clusterRun(cmd, f, func(ctx context.Context, a *client.Admin, out *printer) error {
				if err := a.AddMember(ctx, id, args[1], t); err != nil {
					return clusterExplain(fmt.Sprintf("add member %d", id), f, err)
				}
				out.emit(map[string]any{"member": id, "addr": args[1], "type": t.String()},
					fmt.Sprintf("member %d added as %s at %s", id, t, args[1]))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&typ, "type", "passive", "type of the new member: passive or reserve")
	return cmd
}

func newClusterRemove(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a member (the leader too: it steps down and the others elect a new one)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			return clusterRun(cmd, f, func(ctx context.Context, a *client.Admin, out *printer) error {
				if err := a.RemoveMember(ctx, id); err != nil {
					return clusterExplain(fmt.Sprintf("remove member %d", id), f, err)
				}
				out.emit(map[string]any{"member": id, "removed": true}, fmt.Sprintf("member %d removed", id))
				return nil
			})
		},
	}
}

func newClusterPromote(f *clientFlags) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "promote ID",
		Short: "Promote a member: RESERVE to PASSIVE, or a caught-up PASSIVE to ACTIVE",
		Long: `Promote the member ID: RESERVE to PASSIVE, or PASSIVE to ACTIVE (a voter).
A PASSIVE member is promoted only once its log has caught up with the
leader's; until then the command fails, or with --wait retries until it
succeeds or --timeout runs out.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			return clusterRun(cmd, f, func(ctx context.Context, a *client.Admin, out *printer) error {
				promote := a.PromoteMember
				if wait {
					promote = a.PromoteWhenCaughtUp
				}
				if err := promote(ctx, id); err != nil {
					err = clusterExplain(fmt.Sprintf("promote member %d", id), f, err)
					if !wait && errors.Is(err, client.ErrNotCaughtUp) {
						err = fmt.Errorf("%w (or use --wait)", err)
					}
					return err
				}
				emitMemberType(ctx, a, out, id, "promoted")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "retry while the member is still catching up, until --timeout")
	return cmd
}

func newClusterDemote(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "demote ID",
		Short: "Demote a member: ACTIVE to PASSIVE, or PASSIVE to RESERVE",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			return clusterRun(cmd, f, func(ctx context.Context, a *client.Admin, out *printer) error {
				if err := a.DemoteMember(ctx, id); err != nil {
					return clusterExplain(fmt.Sprintf("demote member %d", id), f, err)
				}
				emitMemberType(ctx, a, out, id, "demoted")
				return nil
			})
		},
	}
}

func newClusterTransfer(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer [ID]",
		Short: "Hand leadership to the ACTIVE member ID, or to the most up-to-date other voter",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var to uint64
			what := "transfer leadership"
			if len(args) == 1 {
				var err error
				if to, err = parseMemberID(args[0]); err != nil {
					return err
				}
				what = fmt.Sprintf("transfer leadership to member %d", to)
			}
			return clusterRun(cmd, f, func(ctx context.Context, a *client.Admin, out *printer) error {
				if err := a.TransferLeadership(ctx, to); err != nil {
					return clusterExplain(what, f, err)
				}
				st, err := a.Status(ctx)
				if err != nil || st.Leader == 0 {
					out.emit(map[string]any{"transferred": true}, "leadership transferred")
					return nil
				}
				out.emit(map[string]any{"transferred": true, "leader": st.Leader, "addr": st.LeaderAddr},
					fmt.Sprintf("member %d (%s) leads now", st.Leader, st.LeaderAddr))
				return nil
			})
		},
	}
}

// emitMemberType prints the type a member has after a promotion or
// demotion, as the leader sees it.
func emitMemberType(ctx context.Context, a *client.Admin, out *printer, id uint64, done string) {
	if st, err := a.Status(ctx); err == nil {
		if m, ok := st.Member(id); ok {
			out.emit(map[string]any{"member": id, "type": m.Type.String()}, fmt.Sprintf("member %d is now %s", id, m.Type))
			return
		}
	}
	out.emit(map[string]any{"member": id, done: true}, fmt.Sprintf("member %d %s", id, done))
}

func parseMemberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("member ID %q is not a positive integer", s)
	}
	return id, nil
}

// clusterRun connects an Admin to the members and runs f with it, the
// whole bounded by --timeout. ctx ends on SIGINT or SIGTERM, or when the
// command's context does (tests cancel it).
func clusterRun(cmd *cobra.Command, f *clientFlags, run func(ctx context.Context, a *client.Admin, out *printer) error) error {
	addrs, err := f.addrs()
	if err != nil {
		return err
	}
	opts, err := f.adminOptions()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	a, err := client.DialAdmin(ctx, addrs, opts...)
	if err != nil {
		return clusterExplain("connect to the cluster", f, err)
	}
	defer a.Close()
	return run(ctx, a, &printer{w: cmd.OutOrStdout(), json: f.json})
}

// adminOptions are the client options the flags ask for.
func (f *clientFlags) adminOptions() ([]client.Option, error) {
	tlsCfg, err := (&serverOptions{tlsCert: f.tlsCert, tlsKey: f.tlsKey, tlsCA: f.tlsCA}).loadTLS()
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithClusterID(f.clusterID), client.WithLogger(slog.New(slog.DiscardHandler)),
		client.WithBackoff(20*time.Millisecond, time.Second)}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	return opts, nil
}

// clusterExplain turns an Admin's error into one sentence that says what
// failed and why, keeping the error's identity for errors.Is.
func clusterExplain(what string, f *clientFlags, err error) error {
	var ae *client.AdminError
	switch {
	case errors.Is(err, context.DeadlineExceeded) && errors.As(err, &ae):
		return fmt.Errorf("cannot %s within %v: %w", what, f.timeout, &reason{err: err, msg: strings.TrimPrefix(ae.Message, ae.Err.Error()+": ")})
	case errors.As(err, &ae):
		// The member's own explanation, without the sentinel's prefix.
		return fmt.Errorf("cannot %s: %w", what, &reason{err: err, msg: strings.TrimPrefix(ae.Message, ae.Err.Error()+": ")})
	case errors.Is(err, transport.ErrRefused):
		return fmt.Errorf("cannot %s: %w", what, &reason{err: err,
			msg: fmt.Sprintf("a member refused the connection (%s); check --cluster-id %q and the TLS flags", refusal(err), f.clusterID)})
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted before the cluster answered to %s", what)
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(err, runtime.ErrNoLeader):
		return fmt.Errorf("cannot %s: %w", what, &reason{err: err,
			msg: fmt.Sprintf("no member knew a leader within %v (is a majority of the members up?)", f.timeout)})
	case errors.Is(err, context.DeadlineExceeded):
		msg := fmt.Sprintf("no answer from the cluster at %s within %v", f.members, f.timeout)
		if last := lastFailure(err); last != nil {
			msg += fmt.Sprintf(" (last error: %v)", innermost(last))
		}
		return fmt.Errorf("cannot %s: %w", what, &reason{err: err, msg: msg})
	}
	return fmt.Errorf("cannot %s: %w", what, err)
}

// reason gives an error a message for operators while keeping what it
// wraps for errors.Is.
type reason struct {
	err error
	msg string
}

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return r.err }

// lastFailure digs the last failure out of an Admin's timeout error, which
// wraps ctx's error and the last failure side by side.
func lastFailure(err error) error {
	for err != nil {
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				if !errors.Is(e, context.DeadlineExceeded) {
					return e
				}
			}
			return nil
		}
		err = errors.Unwrap(err)
	}
	return nil
}

// innermost is the message of the deepest error err wraps: the cause
// without the prefixes each layer added ("connection refused").
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// refusal is the reason a member gave for refusing a handshake.
func refusal(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, transport.ErrRefused.Error()+": "); ok {
		return after
	}
	return transport.ErrRefused.Error()
}
