package gen

import (
	"go/token"
	"go/types"
)

// The model: what the generator knows about a package once its source has
// been read and checked. Emission works from the model alone.

// Package is one Go package with the resources it declares.
type Package struct {
	Path      string // import path
	Name      string // package name
	Dir       string // directory
	Resources []*Resource
	// StateTypes are the package's struct types reachable from snapshot
	// state, by name: they get generated helper functions (see StateType).
	StateTypes []*StateType
}

// Compaction is a resource's log cleaning mode.
type Compaction string

const (
	CompactionSnapshot Compaction = "snapshot"
	CompactionRelease  Compaction = "release"
)

// OpKind is command or query.
type OpKind string

const (
	KindCommand OpKind = "command"
	KindQuery   OpKind = "query"
)

// Resource is one //copycat:resource struct.
type Resource struct {
	Name       string // Go type name, e.g. Counter
	PkgPath    string // import path of the package declaring it
	TypeName   string // wire name: name= or "<PkgPath>.<Name>"
	File       string // the source file declaring the struct
	Doc        string // the struct's doc comment, markers removed
	Compaction Compaction
	Ops        []*Op       // own and promoted operations, by name
	Events     []*Event    // events of its package and of embedded resources, by name
	Errors     []*ErrorVar // errors of its package and of embedded resources, by name
	// Hooks maps a hook (Init, SessionOpened, SessionClosed, Delete) to the
	// field paths whose hook the server calls, in order; "" is the struct
	// itself.
	Hooks map[string][]string
	// SnapshotOverride: the struct has its own Snapshot(io.Writer) error and
	// Restore(io.Reader) error, which the server calls instead.
	SnapshotOverride bool
	// StateCodec: generate EncodeMsgpack/DecodeMsgpack on the struct
	// (snapshot mode without an override, or when the struct does not
	// write its own).
	StateCodec bool
	State      []*Field // fields written to snapshots, in declaration order
	Skipped    []string // fields left out of snapshots (runtime handles, funcs, chans)
	// StateTypes are the package's state types the snapshot reaches.
	StateTypes []*StateType
	// Sessions: the snapshot holds runtime.Session values (as IDs), so the
	// resource gets a ResolveSessions method and its server an Init.
	Sessions bool
	// SessionSubs are the embedded resources (field names) whose snapshot
	// holds sessions: ResolveSessions calls theirs.
	SessionSubs []string

	Pos token.Pos
}

// Op is one operation of a resource.
type Op struct {
	Name        string
	Kind        OpKind
	Code        uint16
	Consistency string // queries: linearizable, lease or sequential
	Commit      bool   // the method takes a runtime.Commit first
	Params      []*Field
	Variadic    bool   // the last parameter is variadic
	Result      *Field // nil for () and (error)
	Error       bool   // the method returns an error last
	Doc         string
	// Path is the field path from the resource to the embedded resource
	// declaring the method ("" for the resource's own methods).
	Path string
	// From names the resource type that declares the method.
	From string
	Pos  token.Pos
}

// Field is a parameter, result or state field, as a struct field.
type Field struct {
	Name  string     // the Go field name in generated structs (capitalized)
	Var   string     // the source name: parameter, named result, or struct field
	Type  types.Type // its type
	Codec Codec
	// Snapshotter: an embedded resource with its own Snapshot/Restore,
	// written in the outer snapshot as the bytes its Snapshot writes.
	Snapshotter bool
}

// Event is one //copycat:event struct type.
type Event struct {
	Name    string
	PkgPath string
	Code    uint16
	Doc     string
	Pos     token.Pos
}

// ErrorVar is one //copycat:error variable.
type ErrorVar struct {
	Name    string
	PkgPath string
	Code    uint16
	Pos     token.Pos
}

// Codec says how a field is written with msgpack: one of the Encoder's
// typed methods (no reflection), or the generic Encode/Decode.
type Codec struct {
	Enc, Dec string     // e.g. EncodeInt, DecodeInt64; empty: generic
	Wire     types.Type // the type the typed methods take/return (int64, ...); nil: generic
}

// Generic reports whether the field goes through enc.Encode/dec.Decode.
func (c Codec) Generic() bool { return c.Enc == "" }

// Hook signatures, by name, for messages.
var hookSigs = map[string]string{
	"Init":          "func(runtime.Context)",
	"SessionOpened": "func(runtime.Session)",
	"SessionClosed": "func(runtime.Session, bool)",
	"Delete":        "func()",
}

var hookNames = []string{"Init", "SessionOpened", "SessionClosed", "Delete"}
