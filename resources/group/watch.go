//go:build !copycatgen

package group

import "context"

// Watch calls f with every Changed event of the instance from now on: it
// registers f locally (OnChanged) and then makes this client's session a
// listener (Listen). stop undoes both; f sees every change applied before
// stop's Unlisten. The listening is per session: two handles of one client
// share it, and stopping one stops the events to both. Watch reports
// changes only: call Members for the membership at the start.
func (cl *GroupClient) Watch(ctx context.Context, f func(Changed)) (stop func(context.Context) error, err error) {
	cancel := cl.OnChanged(f)
	if err := cl.Listen(ctx); err != nil {
		cancel()
		return nil, err
	}
	return func(ctx context.Context) error {
		// Unlisten first: events published before it arrive before its
		// response, so f sees every change up to the stop.
		err := cl.Unlisten(ctx)
		cancel()
		return err
	}, nil
}
