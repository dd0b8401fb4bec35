package gen

import (
	"fmt"
	"go/types"
	"reflect"
)

const (
	runtimePath = "github.com/copycat-go/copycat/runtime"
	clientPath  = "github.com/copycat-go/copycat/runtime/client"
	msgpackPath = "github.com/vmihailenco/msgpack/v5"
)

// isNamed reports whether t is the named type pkg.name.
func isNamed(t types.Type, pkg, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == pkg && n.Obj().Name() == name
}

func isError(t types.Type) bool {
	return types.Identical(types.Unalias(t), types.Universe.Lookup("error").Type())
}

// codecOf picks the msgpack methods for a type: the typed ones for
// basic kinds, time.Duration, time.Time and []byte, unless the type brings
// its own msgpack, binary or text methods; otherwise the generic path.
func codecOf(t types.Type) Codec {
	t = types.Unalias(t)
	if isNamed(t, "time", "Duration") {
		return Codec{Enc: "EncodeDuration", Dec: "DecodeDuration", Wire: t}
	}
	if isNamed(t, "time", "Time") {
		return Codec{Enc: "EncodeTime", Dec: "DecodeTime", Wire: t}
	}
	if n, ok := t.(*types.Named); ok && hasCustomCodec(n) {
		return Codec{}
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Info()&types.IsBoolean != 0:
			return Codec{Enc: "EncodeBool", Dec: "DecodeBool", Wire: types.Typ[types.Bool]}
		case u.Info()&types.IsString != 0:
			return Codec{Enc: "EncodeString", Dec: "DecodeString", Wire: types.Typ[types.String]}
		case u.Info()&types.IsUnsigned != 0:
			return Codec{Enc: "EncodeUint", Dec: "DecodeUint64", Wire: types.Typ[types.Uint64]}
		case u.Info()&types.IsInteger != 0:
			return Codec{Enc: "EncodeInt", Dec: "DecodeInt64", Wire: types.Typ[types.Int64]}
		case u.Kind() == types.Float32:
			return Codec{Enc: "EncodeFloat32", Dec: "DecodeFloat32", Wire: types.Typ[types.Float32]}
		case u.Kind() == types.Float64:
			return Codec{Enc: "EncodeFloat64", Dec: "DecodeFloat64", Wire: types.Typ[types.Float64]}
		}
	case *types.Slice:
		if b, ok := types.Unalias(u.Elem()).(*types.Basic); ok && b.Kind() == types.Byte {
			return Codec{Enc: "EncodeBytes", Dec: "DecodeBytes", Wire: types.NewSlice(types.Typ[types.Byte])}
		}
	}
	return Codec{}
}

// hasCustomCodec reports whether *T has a pair of methods msgpack uses
// instead of reflecting on T's fields.
func hasCustomCodec(t types.Type) bool {
	ms := types.NewMethodSet(types.NewPointer(t))
	has := func(name string) bool {
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Obj().Name() == name {
				return true
			}
		}
		return false
	}
	for _, pair := range [][2]string{
		{"EncodeMsgpack", "DecodeMsgpack"},
		{"MarshalMsgpack", "UnmarshalMsgpack"},
		{"MarshalBinary", "UnmarshalBinary"},
		{"MarshalText", "UnmarshalText"},
	} {
		if has(pair[0]) && has(pair[1]) {
			return true
		}
	}
	return false
}

// checkMode says how strict encodability checks are.
type checkMode int

const (
	// wire: parameters, results and events, which clients in other
	// packages name: every named type must be exported.
	wire checkMode = iota
	// state: snapshot fields, seen only by the package itself.
	state
)

// encodable returns what makes t impossible to send or snapshot with
// msgpack, or "".
func encodable(t types.Type, mode checkMode) string {
	return checkEnc(t, mode, map[types.Type]bool{})
}

func checkEnc(t types.Type, mode checkMode, seen map[types.Type]bool) string {
	t = types.Unalias(t)
	if seen[t] {
		return ""
	}
	seen[t] = true
	switch t := t.(type) {
	case *types.Named:
		obj := t.Obj()
		if obj.Pkg() == nil {
			return "an error value cannot be encoded: return errors as the last result, and declare them with //copycat:error"
		}
		if obj.Pkg().Path() == runtimePath {
			return fmt.Sprintf("runtime.%s cannot be encoded: only a method's first parameter may be a runtime.Commit", obj.Name())
		}
		if !obj.Exported() && mode == wire {
			return fmt.Sprintf("type %s is unexported, and clients outside package %s cannot name it: export it", obj.Name(), obj.Pkg().Name())
		}
		if isNamed(t, "time", "Time") || hasCustomCodec(t) {
			return ""
		}
		for i := 0; i < t.TypeArgs().Len(); i++ {
			if p := checkEnc(t.TypeArgs().At(i), mode, seen); p != "" {
				return p
			}
		}
		if s, ok := t.Underlying().(*types.Struct); ok {
			return checkStruct(s, obj.Name(), mode, seen)
		}
		return checkEnc(t.Underlying(), mode, seen)
	case *types.Basic:
		switch {
		case t.Info()&types.IsComplex != 0:
			return fmt.Sprintf("%s cannot be encoded with msgpack: use two floats", t)
		case t.Kind() == types.UnsafePointer:
			return "unsafe.Pointer cannot be encoded"
		}
		return ""
	case *types.Pointer:
		return checkEnc(t.Elem(), mode, seen)
	case *types.Slice:
		return checkEnc(t.Elem(), mode, seen)
	case *types.Array:
		return checkEnc(t.Elem(), mode, seen)
	case *types.Map:
		if b, ok := types.Unalias(t.Key()).Underlying().(*types.Basic); !ok || b.Info()&(types.IsString|types.IsInteger|types.IsBoolean) == 0 {
			return fmt.Sprintf("map key type %s cannot be decoded reliably: use a string, integer or bool key", t.Key())
		}
		return checkEnc(t.Elem(), mode, seen)
	case *types.Struct:
		if mode == wire {
			return fmt.Sprintf("anonymous struct type %s: declare a named struct type for it", t)
		}
		return checkStruct(t, "", mode, seen)
	case *types.Interface:
		return fmt.Sprintf("interface type %s cannot be decoded: the receiver cannot know the concrete type; use a concrete type", t)
	case *types.Chan:
		return "channels cannot be encoded: a channel cannot cross the wire or enter a snapshot"
	case *types.Signature:
		return "funcs cannot be encoded: a func cannot cross the wire or enter a snapshot"
	case *types.TypeParam:
		return "type parameters are not supported: use a concrete type"
	}
	return fmt.Sprintf("type %s cannot be encoded", t)
}

func checkStruct(s *types.Struct, name string, mode checkMode, seen map[types.Type]bool) string {
	in := "the struct"
	if name != "" {
		in = name
	}
	for i := 0; i < s.NumFields(); i++ {
		f := s.Field(i)
		if reflect.StructTag(s.Tag(i)).Get("msgpack") == "-" || f.Name() == "_" {
			continue
		}
		if !f.Exported() {
			return fmt.Sprintf("field %s of %s is unexported, and msgpack would silently drop it: export it, tag it `msgpack:\"-\"`, or give %s EncodeMsgpack/DecodeMsgpack methods", f.Name(), in, in)
		}
		if p := checkEnc(f.Type(), mode, seen); p != "" {
			return fmt.Sprintf("field %s of %s: %s", f.Name(), in, p)
		}
	}
	return ""
}

// handleOnly reports whether a state field holds what cannot be
// snapshotted by nature: a runtime handle (Context, Commit, Timer...; not
// Session, which a snapshot holds as its ID), a func or a chan, directly or
// through pointers, slices, arrays and maps. Such fields are left out of
// snapshots; Init rebuilds them.
func handleOnly(t types.Type) bool {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if t.Obj().Pkg() != nil && t.Obj().Pkg().Path() == runtimePath && t.Obj().Name() != "Session" {
			return true
		}
		switch t.Underlying().(type) {
		case *types.Signature, *types.Chan:
			return true
		}
	case *types.Signature, *types.Chan:
		return true
	case *types.Pointer:
		return handleOnly(t.Elem())
	case *types.Slice:
		return handleOnly(t.Elem())
	case *types.Array:
		return handleOnly(t.Elem())
	case *types.Map:
		return handleOnly(t.Key()) || handleOnly(t.Elem())
	}
	return false
}
