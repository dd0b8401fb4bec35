//go:build !copycatgen

package dmap

import "context"

// Watch calls f with every Changed event of the instance from now on, for
// the given keys or every key: it registers f locally (OnChanged) and makes
// this client's session a listener (Listen). stop undoes both; f sees every
// change applied before stop's Unlisten. The listening and its filter are
// per session: two handles of one client share them, and the last Watch or
// Listen sets the filter for both.
func (cl *MapClient) Watch(ctx context.Context, keys []string, f func(Changed)) (stop func(context.Context) error, err error) {
	cancel := cl.OnChanged(f)
	if err := cl.Listen(ctx, keys); err != nil {
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
