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
// exported or the type must bring its own msgpack, binary or text methods;
// operations named Resource, Close, Delete or DroppedEvents would clash
// with the client's own methods),
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
// integers, floats, bools, strings, []byte, time.Duration and time.Time,
// and typed loops over slices, arrays and maps of them; enc.Encode/dec.Decode
// for other types); an unexported server type that implements
// runtime.Resource (Execute dispatches op codes to methods) and forwards the
// hooks the struct has (Init, SessionOpened/SessionClosed, Delete); in
// snapshot mode, Snapshot/Restore (see Snapshots); the descriptor
// CounterType; and the client: OpenCounter(ctx, c, name) (*CounterClient,
// error), a method per operation taking ctx first (queries also take
// client.QueryOption after their declared consistency), a Start method per
// command (StartAdd(delta) (*client.Call[int64], error): it sends the
// command and returns at once; the call's Done closes when the outcome is
// known, for callers that wait on it together with a context or an event
// without a goroutine of their own — an operation named Start<Command>
// would clash with it), OnCrossed(func(Crossed))
// (cancel func()) per event, DroppedEvents, Close, Delete and Resource.
// An event the client cannot decode (servers running a newer version of the
// resource) reaches no listener and is counted by DroppedEvents.
//
// Lengths read from the wire bound what decoders preallocate, so a hostile
// length cannot make a member allocate without bound.
//
// # Snapshots
//
// A snapshot-mode resource without its own Snapshot(io.Writer) error and
// Restore(io.Reader) error gets EncodeMsgpack/DecodeMsgpack methods that
// write every field of the struct, exported or not, as a map by name (so a
// snapshot taken before a field was added or removed still restores).
// Fields holding runtime handles (runtime.Context, Commit, Timer...), funcs
// or chans are left out, directly or as the elements of containers: Init
// rebuilds them (timers from the state it restored).
//
// Struct types declared in the resource's package and reached from its
// state, exported or not, through pointers, slices, arrays, maps and named
// types (map[string]entry, []waiter, *node, type queue []waiter) get
// unexported helpers, written once per package in the first generated file
// that needs them: encodeEntry(enc, *entry) error and decodeEntry(dec,
// *entry) error, with their fields as maps by name too; no method is added
// to the user's types. Types of other packages go through
// enc.Encode/dec.Decode and must be encodable as they are (exported fields,
// or their own msgpack, binary or text methods). A struct of the package
// with its own EncodeMsgpack/DecodeMsgpack keeps them.
//
// An embedded resource is written by its own generated methods; one with its
// own Snapshot/Restore is written as the bytes its Snapshot produces, and
// read back through its Restore.
//
// Refused, with the field and the reason: interfaces other than
// runtime.Session, unsafe pointers, complex numbers, map keys other than
// strings, integers and bools (a runtime.Session key: key by the session's
// ID), types that refer to themselves (type node struct{ next *node }: a
// snapshot writes values, not pointer graphs), anonymous structs msgpack
// cannot write as they are, and other packages' types with unexported
// fields. Pointers are written as the values they point to: two pointers to
// one value come back as two values, so keep shared items in one map and
// refer to them by key.
//
// # Sessions in snapshots
//
// A runtime.Session in state (a field, an element of a slice, array or map,
// a field of a state type) is written as its ID (0 for nil). Restore reads
// it back as a stand-in (an unexported copycatSession) that knows only its
// ID; the resource's generated ResolveSessions(runtime.Context) method then
// replaces every stand-in with ctx.Session(id), the very handle commits and
// hooks give, so == comparisons with later sessions hold. The generated
// server calls ResolveSessions in Restore when Init has already given it a
// Context, and otherwise in Init, before the struct's own Init hook runs:
// either order of Init and Restore works, and the user's Init sees real
// sessions (to rebuild timers, say). A session no longer open at that point
// stays a stand-in: its ID is kept, State reports SessionClosed, Publish
// drops the event. ResolveSessions calls the ResolveSessions of embedded
// resources whose state holds sessions; a resource that writes its own
// Snapshot/Restore and embeds one calls it from its Init.
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
