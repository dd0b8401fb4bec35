package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/lock"
)

func newLockCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("lock", "Take, try and inspect distributed locks",
		`Take, try and inspect the cluster's fair (FIFO) locks.

A lock belongs to the session of the client that took it, and this command
is that client: "lock acquire" and "lock try" print the fencing token and
then HOLD the lock until they are interrupted (SIGINT, SIGTERM) or --hold
elapses, then release it and exit 0. Run the protected work meanwhile (in
the background of a script, say) and pass it the token: the storage you
guard should refuse tokens lower than the highest it has seen.

There is no "lock release NAME TOKEN": another process cannot release a lock
it does not hold (the cluster only lets the holding session release it), and
it must not — the lock dies with the holder's session, so stop the holding
process instead. If that process dies without releasing, the cluster frees
the lock once the session times out (--session-timeout).

If the holder loses the lock (its session could not be confirmed alive for
the session timeout: a partition, a stalled process), the command says so
and exits 1 at once, before another client can be granted the lock.`, &f)
	cmd.AddCommand(newLockAcquire(&f), newLockTry(&f), newLockHolder(&f))
	return cmd
}

func newLockAcquire(f *clientFlags) *cobra.Command {
	var holdFor time.Duration
	cmd := &cobra.Command{
		Use:   "acquire NAME",
		Short: "Wait for the lock, print its fencing token and hold it until interrupted",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return shellRun(cmd, f, func(ctx context.Context, c *shellClient, out *printer) error {
				return lockAndHold(ctx, c, out, args[0], -1, holdFor)
			})
		},
	}
	cmd.Flags().DurationVar(&holdFor, "hold", 0, "release the lock and exit after this long (default: hold until interrupted)")
	return cmd
}

func newLockTry(f *clientFlags) *cobra.Command {
	var holdFor, wait time.Duration
	cmd := &cobra.Command{
		Use:   "try NAME",
		Short: "Take the lock if it is granted within --wait (else exit 2), print its token and hold it",
		Long: `Take the lock if it is free, or is granted within --wait (measured in the
cluster's log time), then print its fencing token and hold it as "lock
acquire" does. If the wait runs out the command exits with status 2.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait < 0 {
				return fmt.Errorf("--wait must not be negative, not %v", wait)
			}
			return shellRun(cmd, f, func(ctx context.Context, c *shellClient, out *printer) error {
				return lockAndHold(ctx, c, out, args[0], wait, holdFor)
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "how long to wait for the lock (default: take it only if it is free)")
	cmd.Flags().DurationVar(&holdFor, "hold", 0, "release the lock and exit after this long (default: hold until interrupted)")
	return cmd
}

// lockAndHold takes the lock (waiting without bound if wait < 0), prints
// the token, holds the lock and releases it.
func lockAndHold(ctx context.Context, c *shellClient, out *printer, name string, wait, holdFor time.Duration) error {
	octx, cancel := c.call(ctx)
	m, err := lock.NewMutex(octx, c.Client, name)
	cancel()
	if err != nil {
		return c.explain(fmt.Sprintf("opening lock %q", name), err)
	}
	defer m.Close()
	lost, markLost := notifyOnce()
	defer m.OnLost(markLost)()

	var tok lock.Token
	if wait < 0 {
		tok, err = m.Lock(ctx)
	} else {
		var ok bool
		tok, ok, err = m.TryLock(ctx, wait)
		if err == nil && !ok {
			if wait == 0 {
				return notDone("lock %q is held by another session", name)
			}
			return notDone("lock %q was not granted within %v", name, wait)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before lock %q was granted", name)
		}
		return c.explain(fmt.Sprintf("taking lock %q", name), err)
	}
	out.emit(map[string]any{"lock": name, "token": uint64(tok)}, strconv.FormatUint(uint64(tok), 10))

	wasLost := hold(ctx, holdFor, lost)
	uctx, cancel := c.cleanup(ctx, wasLost)
	defer cancel()
	err = m.Unlock(uctx)
	switch {
	case wasLost || errors.Is(err, lock.ErrLost):
		return fmt.Errorf("lost lock %q (token %d): its session could not be confirmed alive, so another client may hold it now", name, tok)
	case err != nil:
		return c.explain(fmt.Sprintf("releasing lock %q", name), err)
	}
	return nil
}

func newLockHolder(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "holder NAME",
		Short: `Print the holder's fencing token, session and the number of waiters, or "free"`,
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return withOpen(cmd, f, "lock", name, lock.OpenLock, func(ctx context.Context, c *shellClient, out *printer, lc *lock.LockClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				h, err := lc.Holder(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("asking who holds lock %q", name), err)
				}
				v := map[string]any{"lock": name, "free": h.Token == 0, "token": h.Token, "session": h.Session, "waiters": h.Waiters}
				if h.Token == 0 {
					out.emit(v, "free")
					return nil
				}
				out.emit(v,
					fields("token", strconv.FormatUint(h.Token, 10)),
					fields("session", strconv.FormatUint(h.Session, 10)),
					fields("waiters", strconv.Itoa(h.Waiters)))
				return nil
			})
		},
	}
}
