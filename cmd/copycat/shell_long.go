package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/long"
)

func newLongCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("long", "Read and update replicated 64-bit counters",
		`Read and update the cluster's 64-bit counters (0 until first set). Every
command that changes the counter prints its new value.

Numbers may be negative ("copycat long add hits -5"): for that, set, add and
cas read every argument after NAME as an argument, so give flags before NAME.`, &f)
	cmd.AddCommand(newLongGet(&f), newLongSet(&f), newLongAdd(&f), newLongIncr(&f), newLongCAS(&f))
	return cmd
}

// withLong opens the counter name and runs f with it.
func withLong(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, l *long.LongClient) error) error {
	return withOpen(cmd, cf, "long", name, long.OpenLong, f)
}

// printLong prints a counter's value.
func printLong(out *printer, n int64) { out.emit(n, strconv.FormatInt(n, 10)) }

func newLongGet(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Print the counter",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLong(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, l *long.LongClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				n, err := l.Get(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("getting long %q", args[0]), err)
				}
				printLong(out, n)
				return nil
			})
		},
	}
}

func newLongSet(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set NAME N",
		Short: "Set the counter to N",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseInt("N", args[1])
			if err != nil {
				return err
			}
			return withLong(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, l *long.LongClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if err := l.Set(octx, n); err != nil {
					return c.explain(fmt.Sprintf("setting long %q", args[0]), err)
				}
				printLong(out, n)
				return nil
			})
		},
	}
	cmd.Flags().SetInterspersed(false) // negative numbers are arguments, not flags
	return cmd
}

func newLongAdd(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add NAME DELTA",
		Short: "Add DELTA (may be negative) and print the new value",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			delta, err := parseInt("DELTA", args[1])
			if err != nil {
				return err
			}
			return withLong(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, l *long.LongClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				n, err := l.AddAndGet(octx, delta)
				if err != nil {
					return c.explain(fmt.Sprintf("adding to long %q", args[0]), err)
				}
				printLong(out, n)
				return nil
			})
		},
	}
	cmd.Flags().SetInterspersed(false) // negative numbers are arguments, not flags
	return cmd
}

func newLongIncr(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "incr NAME",
		Short: "Add 1 and print the new value",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLong(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, l *long.LongClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				n, err := l.IncrementAndGet(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("incrementing long %q", args[0]), err)
				}
				printLong(out, n)
				return nil
			})
		},
	}
}

func newLongCAS(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cas NAME EXPECT UPDATE",
		Short: "Set the counter to UPDATE if it is EXPECT and print it, else exit 2",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			expect, err := parseInt("EXPECT", args[1])
			if err != nil {
				return err
			}
			update, err := parseInt("UPDATE", args[2])
			if err != nil {
				return err
			}
			return withLong(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, l *long.LongClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				ok, err := l.CompareAndSet(octx, expect, update)
				if err != nil {
					return c.explain(fmt.Sprintf("compare-and-set of long %q", args[0]), err)
				}
				if !ok {
					return notDone("long %q is not %d: left unchanged", args[0], expect)
				}
				printLong(out, update)
				return nil
			})
		},
	}
	cmd.Flags().SetInterspersed(false) // negative numbers are arguments, not flags
	return cmd
}
