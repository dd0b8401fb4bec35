package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/group"
)

func newGroupCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("group", "Join, list and watch group memberships",
		`Join, list and watch the cluster's group memberships.

Members are ephemeral: a member lives as long as the session that joined it,
and "join" is that session. It prints the member ID once joined and stays in
the group until interrupted (then it leaves and exits 0) or --hold elapses.
If its session expires meanwhile it has left the group: it says so and
exits 1.`, &f)
	cmd.AddCommand(newGroupJoin(&f), newGroupMembers(&f), newGroupWatch(&f))
	return cmd
}

// withGroup opens the group name and runs f with it.
func withGroup(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, g *group.GroupClient) error) error {
	return withOpen(cmd, cf, "group", name, group.OpenGroup, f)
}

func newGroupJoin(cf *clientFlags) *cobra.Command {
	var (
		meta    string
		holdFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "join NAME MEMBER",
		Short: "Join the group as MEMBER and stay until interrupted",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, id := args[0], args[1]
			return withGroup(cmd, cf, name, func(ctx context.Context, c *shellClient, out *printer, g *group.GroupClient) error {
				octx, cancel := c.call(ctx)
				m, err := g.Join(octx, id, []byte(meta))
				cancel()
				switch {
				case errors.Is(err, group.ErrMemberExists):
					return fmt.Errorf("%q is already a member of group %q, joined by another session", id, name)
				case err != nil:
					return c.explain(fmt.Sprintf("joining group %q", name), err)
				}
				out.emit(memberJSON(m), m.ID)
				if hold(ctx, holdFor, c.expired()) {
					return fmt.Errorf("left group %q: the session of member %q expired", name, id)
				}
				lctx, cancel := c.call(ctx)
				defer cancel()
				if err := g.Leave(lctx, id); err != nil {
					return c.explain(fmt.Sprintf("leaving group %q", name), err)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&meta, "meta", "", "metadata to publish with the member (an address, say)")
	cmd.Flags().DurationVar(&holdFor, "hold", 0, "leave and exit after this long (default: stay until interrupted)")
	return cmd
}

func memberJSON(m group.Member) map[string]any {
	return map[string]any{"member": m.ID, "session": m.Session, "meta": string(m.Metadata), "index": m.Index}
}

// memberLine is a member's plain line: its ID, then its metadata if any.
func memberLine(m group.Member) string {
	if len(m.Metadata) == 0 {
		return m.ID
	}
	return fields(m.ID, string(m.Metadata))
}

func newGroupMembers(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "members NAME",
		Short: "Print the members, one per line (MEMBER<TAB>META when it has metadata), oldest first",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withGroup(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, g *group.GroupClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				ms, err := g.Members(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("listing group %q", args[0]), err)
				}
				for _, m := range ms {
					out.emit(memberJSON(m), memberLine(m))
				}
				return nil
			})
		},
	}
}

func newGroupWatch(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME",
		Short: "Print every join and leave until interrupted",
		Long: `Print every change of the group until interrupted, one line per change:
"joined<TAB>MEMBER", "updated<TAB>MEMBER" (new metadata) or "left<TAB>MEMBER",
then the metadata if any; a member whose session expired or closed left with
a last field "expired" or "closed".`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withGroup(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, g *group.GroupClient) error {
				return watchUntilInterrupted(ctx, c, fmt.Sprintf("group %q", args[0]),
					func(ctx context.Context) (func(context.Context) error, error) {
						return g.Watch(ctx, func(e group.Changed) { printGroupChange(out, e) })
					})
			})
		},
	}
}

func printGroupChange(out *printer, e group.Changed) {
	v := memberJSON(e.Member)
	v["kind"], v["expired"], v["closed"] = e.Kind.String(), e.Expired, e.Closed
	line := []string{e.Kind.String(), memberLine(e.Member)}
	switch {
	case e.Expired:
		line = append(line, "expired")
	case e.Closed:
		line = append(line, "closed")
	}
	out.emit(v, fields(line...))
}
