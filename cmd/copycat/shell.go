package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/runtime/client"
)

// The shell commands (`copycat lock ...`, `copycat map ...`, ...) drive the
// built-in resources of a running cluster as a client. Each invocation
// opens its own session, so whatever a command holds (a lock, a leadership,
// a group membership) lives as long as that process: commands that take
// something hold it until they are interrupted.

// Exit statuses of the shell commands, beyond 0 for success.
const (
	// exitFailure: an error, or the thing asked for is absent (a missing
	// key, an unset value, an empty queue).
	exitFailure = 1
	// exitNotDone: a conditional operation did not happen (a lock not
	// acquired within --wait, a compare-and-set that found another value,
	// a take that got nothing within --wait).
	exitNotDone = 2
)

// shellCommands returns the command groups that drive the built-ins.
func shellCommands() []*cobra.Command {
	return []*cobra.Command{
		newLockCmd(), newMapCmd(), newElectionCmd(), newValueCmd(),
		newLongCmd(), newQueueCmd(), newSetCmd(), newGroupCmd(),
	}
}

// exitError is an error that sets the process's exit status. An empty
// message prints nothing (the command's output already says it).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode returns the exit status for an error returned by a command.
func exitCode(err error) int {
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return exitFailure
}

// notDone reports a conditional operation that did not happen.
func notDone(format string, args ...any) error {
	return &exitError{code: exitNotDone, msg: fmt.Sprintf(format, args...)}
}

// absent reports that what was asked for does not exist.
func absent(format string, args ...any) error {
	return &exitError{code: exitFailure, msg: fmt.Sprintf(format, args...)}
}

// shellGroup makes the parent command of one built-in, carrying the client
// flags. Run on its own it prints its help; with an unknown subcommand it
// fails (cobra would otherwise print the help and exit 0).
func shellGroup(use, short, long string, f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	f.register(cmd)
	return cmd
}

// shellArgs checks the number of positional arguments against the command's
// usage line, NAME KEY VALUE style; names in [brackets] are optional.
func shellArgs(cmd *cobra.Command, args []string) error {
	fields := strings.Fields(cmd.Use)[1:]
	var need, most int
	for _, f := range fields {
		if strings.HasPrefix(f, "-") || strings.HasPrefix(f, "[-") {
			continue
		}
		most++
		if !strings.HasPrefix(f, "[") {
			need++
		}
	}
	if len(args) < need || len(args) > most {
		return fmt.Errorf("usage: %s (got %d argument%s)", cmd.UseLine(), len(args), plural(len(args)))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// shellRun connects to the cluster and runs f with the session; it ends
// the session afterwards. ctx ends on SIGINT or SIGTERM, or when the
// command's context does (tests cancel it).
func shellRun(cmd *cobra.Command, f *clientFlags, run func(ctx context.Context, c *shellClient, out *printer) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// Once interrupted, let a second signal kill the process as usual
		// rather than wait for the clean-up (unlock, resign, leave).
		<-ctx.Done()
		stop()
	}()
	c, err := f.connect(ctx, cmd.CommandPath())
	if err != nil {
		return err
	}
	defer c.Close()
	return run(ctx, c, &printer{w: cmd.OutOrStdout(), json: f.json})
}

// withOpen connects, opens the resource kind NAME with open, runs f with
// it and closes it.
func withOpen[R io.Closer](cmd *cobra.Command, cf *clientFlags, kind, name string,
	open func(context.Context, *client.Client, string) (R, error),
	f func(ctx context.Context, c *shellClient, out *printer, r R) error,
) error {
	return shellRun(cmd, cf, func(ctx context.Context, c *shellClient, out *printer) error {
		octx, cancel := c.call(ctx)
		r, err := open(octx, c.Client, name)
		cancel()
		if err != nil {
			return c.explain(fmt.Sprintf("opening %s %q", kind, name), err)
		}
		defer r.Close()
		return f(ctx, c, out, r)
	})
}

// printer writes results: plain lines (fields separated by tabs) or, with
// --json, one JSON document per line. It is safe for concurrent use (event
// callbacks print from the client's goroutine).
type printer struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// emit prints v as JSON with --json, else the plain lines.
func (p *printer) emit(v any, lines ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte(strconv.Quote(err.Error())) // cannot happen: only plain types are printed
		}
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	for _, l := range lines {
		fmt.Fprintln(p.w, l)
	}
}

// fields joins one line's fields with tabs.
func fields(fs ...string) string { return strings.Join(fs, "\t") }

// hold waits, holding what the command took, until ctx ends (interrupt),
// d elapses (d > 0) or lost is closed; it reports whether it was lost.
func hold(ctx context.Context, d time.Duration, lost <-chan struct{}) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
	case <-timeout:
	case <-lost:
		return true
	}
	return false
}

// notifyOnce returns a channel and a function that closes it (once): the
// form OnLost callbacks need.
func notifyOnce() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}

// checkTTL refuses a negative --ttl before anything is sent.
func checkTTL(ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("--ttl must not be negative, not %v", ttl)
	}
	return nil
}

// parseInt parses an integer argument, naming it in the error.
func parseInt(name, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a 64-bit integer", name, s)
	}
	return n, nil
}
