package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/dmap"
)

func newMapCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("map", "Read, write and watch replicated maps",
		`Read, write and watch the cluster's maps of string keys to values.

Values are taken and printed as given (bytes, not quoted); "list" prints one
KEY<TAB>VALUE line per entry, in key order. "get" of a missing key prints a
message and exits 1.`, &f)
	cmd.AddCommand(
		newMapPut(&f), newMapGet(&f), newMapRemove(&f), newMapList(&f),
		newMapSize(&f), newMapClear(&f), newMapWatch(&f))
	return cmd
}

// withMap opens the map name and runs f with it.
func withMap(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, m *dmap.MapClient) error) error {
	return withOpen(cmd, cf, "map", name, dmap.OpenMap, f)
}

func newMapPut(cf *clientFlags) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "put NAME KEY VALUE",
		Short: "Set a key's value",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTTL(ttl); err != nil {
				return err
			}
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, m *dmap.MapClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if _, err := m.Put(octx, args[1], []byte(args[2]), ttl); err != nil {
					return c.explain(fmt.Sprintf("putting %q in map %q", args[1], args[0]), err)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "remove the key after this long (default: never)")
	return cmd
}

func newMapGet(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME KEY",
		Short: "Print a key's value (exit 1 if the key is missing)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, m *dmap.MapClient) error {
				name, key := args[0], args[1]
				octx, cancel := c.call(ctx)
				defer cancel()
				v, err := m.Get(octx, key)
				if err == nil && len(v) == 0 {
					// Get cannot tell a missing key from an empty value.
					var ok bool
					if ok, err = m.ContainsKey(octx, key); err == nil && !ok {
						return absent("key %q is not in map %q", key, name)
					}
				}
				if err != nil {
					return c.explain(fmt.Sprintf("getting %q from map %q", key, name), err)
				}
				out.emit(map[string]any{"key": key, "value": string(v)}, string(v))
				return nil
			})
		},
	}
}

func newMapRemove(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME KEY",
		Short: "Remove a key (missing keys are fine)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, m *dmap.MapClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if _, err := m.Remove(octx, args[1]); err != nil {
					return c.explain(fmt.Sprintf("removing %q from map %q", args[1], args[0]), err)
				}
				return nil
			})
		},
	}
}

func newMapList(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list NAME",
		Short: "Print every entry as KEY<TAB>VALUE, in key order",
		Long: `Print every entry as KEY<TAB>VALUE, in key order. The map is read a page
at a time: each page is consistent, but a map written meanwhile may show
keys of different moments across pages.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, m *dmap.MapClient) error {
				from := ""
				for {
					octx, cancel := c.call(ctx)
					page, err := m.Entries(octx, from, dmap.MaxPage)
					cancel()
					if err != nil {
						return c.explain(fmt.Sprintf("listing map %q", args[0]), err)
					}
					for _, e := range page.Entries {
						out.emit(map[string]any{"key": e.Key, "value": string(e.Value)}, fields(e.Key, string(e.Value)))
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

func newMapSize(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "size NAME",
		Short: "Print the number of keys",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, m *dmap.MapClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				n, err := m.Size(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("sizing map %q", args[0]), err)
				}
				out.emit(n, strconv.Itoa(n))
				return nil
			})
		},
	}
}

func newMapClear(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "clear NAME",
		Short: "Remove every key",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, m *dmap.MapClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if err := m.Clear(octx); err != nil {
					return c.explain(fmt.Sprintf("clearing map %q", args[0]), err)
				}
				return nil
			})
		},
	}
}

func newMapWatch(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME [KEY]",
		Short: "Print every change of the map (or of one key) until interrupted",
		Long: `Print every change of the map, or of one key, until interrupted, one line
per change: "inserted<TAB>KEY<TAB>VALUE", "updated<TAB>KEY<TAB>VALUE" or
"removed<TAB>KEY" (with a last field "expired" when its time to live ran out).`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var keys []string
			if len(args) > 1 {
				keys = args[1:]
			}
			return withMap(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, m *dmap.MapClient) error {
				return watchUntilInterrupted(ctx, c, fmt.Sprintf("map %q", args[0]),
					func(ctx context.Context) (func(context.Context) error, error) {
						return m.Watch(ctx, keys, func(e dmap.Changed) { printMapChange(out, e) })
					})
			})
		},
	}
}

func printMapChange(out *printer, e dmap.Changed) {
	v := map[string]any{"kind": e.Kind.String(), "key": e.Key}
	line := []string{e.Kind.String(), e.Key}
	if e.Kind == dmap.Removed {
		v["old"] = string(e.Old)
		if e.Expired {
			v["expired"] = true
			line = append(line, "expired")
		}
	} else {
		v["value"] = string(e.New)
		line = append(line, string(e.New))
	}
	out.emit(v, fields(line...))
}

// watchUntilInterrupted starts a watch, streams until ctx ends and stops
// it; it fails if the session expires meanwhile (events would stop).
func watchUntilInterrupted(ctx context.Context, c *shellClient, what string, start func(context.Context) (func(context.Context) error, error)) error {
	octx, cancel := c.call(ctx)
	stop, err := start(octx)
	cancel()
	if err != nil {
		return c.explain("watching "+what, err)
	}
	select {
	case <-ctx.Done():
	case <-c.expired():
		return fmt.Errorf("stopped watching %s: the session expired, so changes may have been missed", what)
	}
	sctx, cancel := c.call(ctx)
	defer cancel()
	if err := stop(sctx); err != nil {
		return c.explain("ending the watch of "+what, err)
	}
	return nil
}
