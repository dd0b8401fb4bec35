//go:build !copycatgen

package set

import "context"

// Watch calls f with every Changed event of the instance from now on: it
// registers f locally (OnChanged) and makes this client's session a
// listener (Listen). stop undoes both; f sees every change applied before
// stop's Unlisten. Listening is per session: two handles of one client
// share it.
func (cl *SetClient) Watch(ctx context.Context, f func(Changed)) (stop func(context.Context) error, err error) {
	cancel := cl.OnChanged(f)
	if err := cl.Listen(ctx); err != nil {
		cancel()
		return nil, err
	}
	return func(ctx context.Context) error {
		// Unlisten first: events published before it arrive before its
		// response.
		err := cl.Unlisten(ctx)
		cancel()
		return err
	}, nil
}
