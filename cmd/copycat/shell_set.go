package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/set"
)

func newSetCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("set", "Add to, remove from, test, list and watch replicated sets",
		`Add to, remove from, test, list and watch the cluster's sets of strings.

"contains" prints true or false and, like grep, exits 1 when false.`, &f)
	cmd.AddCommand(newSetAdd(&f), newSetRemove(&f), newSetContains(&f), newSetMembers(&f), newSetSize(&f), newSetWatch(&f))
	return cmd
}

// withSet opens the set name and runs f with it.
func withSet(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, s *set.SetClient) error) error {
	return withOpen(cmd, cf, "set", name, set.OpenSet, f)
}

func newSetAdd(cf *clientFlags) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "add NAME VALUE",
		Short: "Add VALUE to the set",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTTL(ttl); err != nil {
				return err
			}
			return withSet(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, s *set.SetClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if _, err := s.Add(octx, args[1], ttl); err != nil {
					return c.explain(fmt.Sprintf("adding %q to set %q", args[1], args[0]), err)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "remove VALUE after this long (default: never)")
	return cmd
}

func newSetRemove(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME VALUE",
		Short: "Remove VALUE from the set (absent values are fine)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSet(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, s *set.SetClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if _, err := s.Remove(octx, args[1]); err != nil {
					return c.explain(fmt.Sprintf("removing %q from set %q", args[1], args[0]), err)
				}
				return nil
			})
		},
	}
}

func newSetContains(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "contains NAME VALUE",
		Short: "Print whether VALUE is in the set (exit 1 if not)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSet(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, s *set.SetClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				ok, err := s.Contains(octx, args[1])
				if err != nil {
					return c.explain(fmt.Sprintf("looking for %q in set %q", args[1], args[0]), err)
				}
				out.emit(ok, strconv.FormatBool(ok))
				if !ok {
					return &exitError{code: exitFailure} // the output said it
				}
				return nil
			})
		},
	}
}

func newSetMembers(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "members NAME",
		Short: "Print every value in the set, one per line, in order",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSet(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, s *set.SetClient) error {
				from := ""
				for {
					octx, cancel := c.call(ctx)
					page, err := s.Members(octx, from, 0)
					cancel()
					if err != nil {
						return c.explain(fmt.Sprintf("listing set %q", args[0]), err)
					}
					for _, m := range page.Members {
						out.emit(m, m)
					}
					if !page.More {
						return nil
					}
					from = page.Next
				}
			})
		},
	}
}

func newSetSize(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "size NAME",
		Short: "Print the number of values",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSet(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, s *set.SetClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				n, err := s.Size(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("sizing set %q", args[0]), err)
				}
				out.emit(n, strconv.Itoa(n))
				return nil
			})
		},
	}
}

func newSetWatch(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME",
		Short: "Print every change of the set until interrupted",
		Long: `Print every change of the set until interrupted, one line per change:
"added<TAB>VALUE" or "removed<TAB>VALUE" (with a last field "expired" when
its time to live ran out).`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSet(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, s *set.SetClient) error {
				return watchUntilInterrupted(ctx, c, fmt.Sprintf("set %q", args[0]),
					func(ctx context.Context) (func(context.Context) error, error) {
						return s.Watch(ctx, func(e set.Changed) { printSetChange(out, e) })
					})
			})
		},
	}
}

func printSetChange(out *printer, e set.Changed) {
	line := []string{e.Kind.String(), e.Member}
	if e.Expired {
		line = append(line, "expired")
	}
	out.emit(map[string]any{"kind": e.Kind.String(), "value": e.Member, "expired": e.Expired}, fields(line...))
}
