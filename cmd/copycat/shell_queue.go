package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/resources/queue"
)

func newQueueCmd() *cobra.Command {
	var f clientFlags
	cmd := shellGroup("queue", "Offer to, poll, peek, take from and size replicated FIFO queues",
		`Offer to, poll, peek, take from and size the cluster's FIFO queues.

"poll" and "peek" of an empty queue print a message and exit 1; "take"
waits for an element instead (exit 2 if --wait runs out first).`, &f)
	cmd.AddCommand(newQueueOffer(&f), newQueuePoll(&f), newQueuePeek(&f), newQueueTake(&f), newQueueSize(&f))
	return cmd
}

// withQueue opens the queue name and runs f with it.
func withQueue(cmd *cobra.Command, cf *clientFlags, name string, f func(ctx context.Context, c *shellClient, out *printer, q *queue.QueueClient) error) error {
	return withOpen(cmd, cf, "queue", name, queue.OpenQueue, f)
}

// printElement prints a taken or peeked element.
func printElement(out *printer, v []byte) {
	out.emit(map[string]any{"value": string(v)}, string(v))
}

func newQueueOffer(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "offer NAME VALUE",
		Short: "Append VALUE to the queue (or hand it to a waiting taker)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withQueue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, _ *printer, q *queue.QueueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				if _, err := q.Offer(octx, []byte(args[1])); err != nil {
					return c.explain(fmt.Sprintf("offering to queue %q", args[0]), err)
				}
				return nil
			})
		},
	}
}

func newQueuePoll(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "poll NAME",
		Short: "Remove and print the head of the queue (exit 1 if it is empty)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withQueue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, q *queue.QueueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				e, err := q.Poll(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("polling queue %q", args[0]), err)
				}
				if !e.Ok {
					return absent("queue %q is empty", args[0])
				}
				printElement(out, e.Value)
				return nil
			})
		},
	}
}

func newQueuePeek(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "peek NAME",
		Short: "Print the head of the queue without removing it (exit 1 if it is empty)",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withQueue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, q *queue.QueueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				e, err := q.Peek(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("peeking at queue %q", args[0]), err)
				}
				if !e.Ok {
					return absent("queue %q is empty", args[0])
				}
				printElement(out, e.Value)
				return nil
			})
		},
	}
}

func newQueueSize(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "size NAME",
		Short: "Print the number of elements",
		Args:  shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withQueue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, q *queue.QueueClient) error {
				octx, cancel := c.call(ctx)
				defer cancel()
				n, err := q.Size(octx)
				if err != nil {
					return c.explain(fmt.Sprintf("sizing queue %q", args[0]), err)
				}
				out.emit(n, strconv.Itoa(n))
				return nil
			})
		},
	}
}

func newQueueTake(cf *clientFlags) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "take NAME",
		Short: "Remove and print the head of the queue, waiting for one if it is empty",
		Long: `Remove and print the head of the queue, waiting until an element is
offered if it is empty: takers are served in the order they asked. With
--wait, give up (exit 2) if nothing came within it. An element handed over
as the wait ends or the command is interrupted is still printed, never
lost.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait < 0 {
				return fmt.Errorf("--wait must not be negative, not %v", wait)
			}
			return withQueue(cmd, cf, args[0], func(ctx context.Context, c *shellClient, out *printer, q *queue.QueueClient) error {
				v, err := take(ctx, c, q, args[0], wait)
				if err != nil {
					return err
				}
				printElement(out, v)
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "give up after this long (default: wait until interrupted)")
	return cmd
}

// take is a blocking take for a process that exits afterwards. It does
// not use queue.BlockingQueue, which keeps an element that arrives as the
// wait is abandoned for the handle's next Take: this process has no next
// take, so it withdraws the request and, if the cluster says the element
// was already handed over, waits for it and returns it.
func take(ctx context.Context, c *shellClient, q *queue.QueueClient, name string, wait time.Duration) ([]byte, error) {
	var (
		mu        sync.Mutex
		delivered = map[uint64][]byte{} // events may come before Await's answer
		arrived   = make(chan struct{}, 1)
	)
	defer q.OnDelivered(func(e queue.Delivered) {
		mu.Lock()
		delivered[e.Token] = e.Value
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	})()
	got := func(token uint64) ([]byte, bool) {
		mu.Lock()
		defer mu.Unlock()
		v, ok := delivered[token]
		return v, ok
	}

	// Await is quick (the element or a place in line) and must get its
	// answer even if ctx ends: only the answer names the request to withdraw.
	actx, cancel := c.call(context.WithoutCancel(ctx))
	t, err := q.Await(actx)
	cancel()
	if err != nil {
		return nil, c.explain(fmt.Sprintf("taking from queue %q", name), err)
	}
	if t.Ok {
		return t.Value, nil
	}
	var timeout <-chan time.Time
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		timeout = timer.C
	}
waiting:
	for {
		if v, ok := got(t.Token); ok {
			return v, nil
		}
		select {
		case <-arrived:
		case <-c.expired():
			return nil, fmt.Errorf("stopped waiting on queue %q: the session expired", name)
		case <-ctx.Done():
			break waiting
		case <-timeout:
			break waiting
		}
	}

	// Give up the place in line, unless an element was handed over.
	wctx, cancel := c.call(context.WithoutCancel(ctx))
	defer cancel()
	withdrawn, err := q.Withdraw(wctx, t.Token)
	if err != nil {
		return nil, c.explain(fmt.Sprintf("withdrawing from queue %q", name), err)
	}
	if withdrawn {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted before an element of queue %q came", name)
		}
		return nil, notDone("no element came to queue %q within %v", name, wait)
	}
	// The element's event comes before Withdraw's answer; wait for its
	// delivery to the listener all the same.
	for {
		if v, ok := got(t.Token); ok {
			return v, nil
		}
		select {
		case <-arrived:
		case <-wctx.Done():
			return nil, fmt.Errorf("queue %q handed an element over, but it did not arrive within %v", name, c.timeout)
		}
	}
}
