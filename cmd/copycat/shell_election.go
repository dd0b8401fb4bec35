package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/election"
	"github.com/copycat-go/copycat/runtime/client"
)

func newElectionCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("election", "Campaign in, inspect and observe leader elections",
		`Campaign in, inspect and observe the cluster's leader elections.

Candidates are elected one at a time, in the order they campaigned; a term
is the log index of the winning campaign, so terms only grow. Leadership
belongs to the session of the campaigning client, and "campaign" is that
client: once elected it prints the term and leads until it is interrupted
(then it resigns and exits 0) or --hold elapses. If it loses the leadership
(its session could not be confirmed alive) it says so and exits 1.`, &f)
	cmd.AddCommand(newElectionCampaign(&f), newElectionLeader(&f), newElectionObserve(&f))
	return cmd
}

// withElector opens the election name and runs f with it.
func withElector(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, e *election.Elector) error) error {
	open := func(ctx context.Context, cli *client.Client, name string) (*election.Elector, error) {
		return election.NewElector(ctx, cli, name)
	}
	return withOpen(cmd, cf, "election", name, open, f)
}

func newElectionCampaign(cf *clientFlags) *cobra.Command {
	var holdFor time.Duration
	cmd := &cobra.Command{
		Use:   "campaign NAME CANDIDATE",
		Short: "Wait to be elected, print the term and lead until interrupted",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, candidate := args[0], args[1]
			return withElector(cmd, cf, name, func(ctx context.Context, c *shellClient, out *printer, e *election.Elector) error {
				lost, markLost := notifyOnce()
				defer e.OnLost(markLost)()
				term, err := e.Campaign(ctx, candidate)
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted before %s was elected in %q", candidate, name)
					}
					return c.explain(fmt.Sprintf("campaigning in election %q", name), err)
				}
				out.emit(map[string]any{"election": name, "candidate": candidate, "term": uint64(term)},
					strconv.FormatUint(uint64(term), 10))
				wasLost := hold(ctx, holdFor, lost)
				rctx, cancel := c.cleanup(ctx, wasLost)
				defer cancel()
				err = e.Resign(rctx)
				switch {
				case wasLost || errors.Is(err, election.ErrLost):
					return fmt.Errorf("lost the leadership of election %q (term %d): the session could not be confirmed alive, so another candidate may lead now", name, term)
				case err != nil:
					return c.explain(fmt.Sprintf("resigning from election %q", name), err)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&holdFor, "hold", 0, "resign and exit after leading this long (default: lead until interrupted)")
	return cmd
}

func newElectionLeader(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "leader NAME",
		Short: `Print the leader's candidate name, term, session and value, or "none"`,
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withElector(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, e *election.Elector) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				info, err := e.Leader(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("asking who leads election %q", args[0]), err)
				}
				v := leaderJSON(info)
				if info.Term == 0 {
					out.emit(v, "none")
					return nil
				}
				lines := []string{
					fields("candidate", info.Candidate),
					fields("term", strconv.FormatUint(info.Term, 10)),
					fields("session", strconv.FormatUint(info.Session, 10)),
					fields("waiting", strconv.Itoa(info.Waiting)),
				}
				if info.Value != nil {
					lines = append(lines, fields("value", string(info.Value)))
				}
				out.emit(v, lines...)
				return nil
			})
		},
	}
}

func leaderJSON(info election.LeaderInfo) map[string]any {
	return map[string]any{
		"candidate": info.Candidate, "term": info.Term, "session": info.Session,
		"value": string(info.Value), "waiting": info.Waiting,
	}
}

func newElectionObserve(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "observe NAME",
		Short: "Print every change of leader until interrupted",
		Long: `Print every change of the election until interrupted, one line per change:
"leader<TAB>CANDIDATE<TAB>TERM" for a new leader, "none" when nobody leads,
"proclaimed<TAB>CANDIDATE<TAB>TERM<TAB>VALUE" for a value the leader proclaimed.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withElector(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, e *election.Elector) error {
				return watchUntilInterrupted(ctx, c, fmt.Sprintf("election %q", args[0]),
					func(ctx context.Context) (func(context.Context) error, error) {
						return e.Observe(ctx, func(ch election.Changed) { printLeaderChange(out, ch) })
					})
			})
		},
	}
}

func printLeaderChange(out *printer, ch election.Changed) {
	info := ch.Leader
	v := leaderJSON(info)
	v["proclaimed"] = ch.Proclaimed
	term := strconv.FormatUint(info.Term, 10)
	switch {
	case info.Term == 0:
		out.emit(v, "none")
	case ch.Proclaimed:
		out.emit(v, fields("proclaimed", info.Candidate, term, string(info.Value)))
	default:
		out.emit(v, fields("leader", info.Candidate, term))
	}
}
