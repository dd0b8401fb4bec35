// Package gen is copycatgen as a library: it reads Go packages that declare
// Copycat resources and writes their generated code.
//
// The pipeline is load -> model -> emit: one packages.Load (with the build
// tag copycatgen, which excludes generated files, so stale or broken output
// never stops a load) gives syntax and types; the model builder reads the
// markers and checks everything, reporting every problem at once as
// Diagnostics (file:line:col: message); Emit renders each package with
// jennifer into map[path][]byte. Generate is a pure function of the source;
// Result.Write writes only what changed and removes stale files, and
// Result.Changes is what copycatgen -check reports.
//
// # Markers
//
// Markers are Go directives ("//copycat:KIND key=value", no space after the
// slashes) in the doc comment of what they mark; arguments are strict,
// unknown ones are errors:
//
//	//copycat:resource [name=T] [compaction=snapshot|release]  a struct type
//	//copycat:command  [code=N]                               a method
//	//copycat:query    [code=N] [consistency=linearizable|lease|sequential]
//	//copycat:event    [code=N]                               a struct type
//	//copycat:error    [code=N]                               an error variable
//
// # Operations
//
// A marked method has a pointer receiver, is exported, takes an optional
// first runtime.Commit and then named parameters of encodable types
// (no chans, funcs, interfaces or unexported types; struct fields must be
// exported or the type must bring its own msgpack, binary or text methods),
// and returns (), (T), (error) or (T, error). A query may take a Commit
// for its Time, Index or Session, but may not call Release on it: queries
// never enter the log, the generator refuses a direct call and the runtime
// panics on an indirect one.
//
// # Codes
//
// Operations, events and errors are numbered by Code: FNV-1a of the name
// folded to 16 bits. Codes depend only on names, so adding an operation
// never renumbers the others and an embedded resource's operations keep
// their codes; a collision (or a hash of 0) is reported, and code=N
// settles it.
//
// # Generated code
//
// For a resource Counter declared in counter.go, counter_copycat.go holds:
// the codes (CounterAddOp, CounterCrossedEvent); one struct per operation
// holding its arguments (CounterAdd{Delta int64}) and one per result
// (CounterAddResult{Value int64}, or the result's name), with
// EncodeMsgpack/DecodeMsgpack methods written out (typed msgpack calls for
// integers, floats, bools, strings, []byte, time.Duration and time.Time;
// enc.Encode/dec.Decode for other types); an unexported server type that
// implements runtime.Resource (Execute dispatches op codes to methods) and
// forwards the hooks the struct has (Init, SessionOpened/SessionClosed,
// Delete); in snapshot mode, Snapshot/Restore that write every field of the
// struct, exported or not, by name, except fields holding runtime handles
// (runtime.Context, Commit, Session, Timer...), funcs or chans, which Init
// must rebuild (a struct's own Snapshot(io.Writer) error and
// Restore(io.Reader) error replace them); the descriptor CounterType; and
// the client: OpenCounter(ctx, c, name) (*CounterClient, error), a method
// per operation taking ctx first (queries also take client.QueryOption
// after their declared consistency), OnCrossed(func(Crossed)) (cancel
// func()) per event, Close, Delete and Resource.
//
// # Embedding
//
// A resource that embeds another (by value, from any package) gets its
// operations, events, errors and hooks. The outer struct's own methods win
// on a name clash, as with Go's method promotion; two embedded resources
// offering one operation name is an error. A hook the outer struct declares
// replaces the embedded ones (call them yourself); otherwise each embedded
// resource's hook is called in field order. A resource embedding a
// release-mode resource is release-mode unless it says otherwise, and may
// not say snapshot.
package gen
