package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/value"
)

func newValueCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("value", "Read, write, compare-and-set and watch replicated values",
		`Read, write, compare-and-set and watch the cluster's single replicated values.

An empty value and an unset one are the same: "get" of either prints a
message and exits 1, and "cas NAME '' NEW" sets a value that is unset.`, &f)
	cmd.AddCommand(newValueGet(&f), newValueSet(&f), newValueCAS(&f), newValueWatch(&f))
	return cmd
}

// withValue opens the value name and runs f with it.
func withValue(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, v *value.ValueClient) error) error {
	return withOpen(cmd, cf, "value", name, value.OpenValue, f)
}

func newValueGet(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Print the value (exit 1 if it is unset)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withValue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, v *value.ValueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				b, err := v.Get(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("getting value %q", args[0]), err)
				}
				if len(b) == 0 {
					return absent("value %q is unset", args[0])
				}
				out.emit(map[string]any{"value": string(b)}, string(b))
				return nil
			})
		},
	}
}

func newValueSet(cf *clientFlags) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "set NAME VALUE",
		Short: "Set the value",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTTL(ttl); err != nil {
				return err
			}
			return withValue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, v *value.ValueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if err := v.Set(octx, []byte(args[1]), ttl); err != nil {
					return c.explain(fmt.Sprintf("setting value %q", args[0]), err)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "unset the value after this long (default: never)")
	return cmd
}

func newValueCAS(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cas NAME EXPECT UPDATE",
		Short: "Set the value to UPDATE if it is EXPECT ('' for unset), else exit 2",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withValue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, v *value.ValueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				ok, err := v.CompareAndSet(octx, []byte(args[1]), []byte(args[2]))
				if err != nil {
					return c.explain(fmt.Sprintf("compare-and-set of value %q", args[0]), err)
				}
				if !ok {
					return notDone("value %q is not %q: left unchanged", args[0], args[1])
				}
				return nil
			})
		},
	}
}

func newValueWatch(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME",
		Short: "Print every change of the value until interrupted",
		Long: `Print every change of the value until interrupted, one line per change:
"set<TAB>VALUE", "unset", or "expired" when its time to live ran out.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withValue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, v *value.ValueClient) error {
				return watchUntilInterrupted(ctx, c, fmt.Sprintf("value %q", args[0]),
					func(ctx context.Context) (func(context.Context) error, error) {
						return v.Watch(ctx, func(e value.Changed) { printValueChange(out, e) })
					})
			})
		},
	}
}

func printValueChange(out *printer, e value.Changed) {
	v := map[string]any{"old": string(e.Old), "value": string(e.New), "expired": e.Expired}
	switch {
	case e.Expired:
		out.emit(v, "expired")
	case len(e.New) == 0:
		out.emit(v, "unset")
	default:
		out.emit(v, fields("set", string(e.New)))
	}
}
