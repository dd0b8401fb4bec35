package gen

import (
	"fmt"
	"go/types"
	"strconv"

	"github.com/dave/jennifer/jen"
)

// Typed msgpack code: how a value of a given type is written and read
// without reflection, recursively through pointers, slices, arrays and
// maps; what cannot be written so goes through enc.Encode/dec.Decode.

const msgpcodePath = msgpackPath + "/msgpcode"

// resolveMethod is the method written on a resource whose snapshot holds
// sessions.
const resolveMethod = "ResolveSessions"

// sessionHelpers are the package-level names written once per package
// whose snapshots hold sessions.
var sessionHelpers = []string{"copycatSession", "copycatSessionID", "copycatRestoredSession", "copycatResolveSession"}

// allocLimit caps what a decoder preallocates for a length read from the
// input, so a hostile length cannot make a member allocate without bound.
const allocLimit = 1 << 12

// stateHelper names a state type's helper: encodeEntry for entry.
func stateHelper(prefix string, obj *types.TypeName) string {
	return prefix + exportName(obj.Name())
}

type plan int

const (
	planGeneric plan = iota // enc.Encode / dec.Decode
	planBasic               // a typed Encoder/Decoder method
	planSession             // a runtime.Session, as its ID (state only)
	planState               // a state type: encodeT / decodeT (state only)
	planPtr                 // state only
	planSlice
	planArray
	planMap
)

// planOf says how a value of type t is written.
func (e *emitter) planOf(t types.Type, mode checkMode) plan {
	t = types.Unalias(t)
	if mode == state && isNamed(t, runtimePath, "Session") {
		return planSession
	}
	if !codecOf(t).Generic() {
		return planBasic
	}
	if n, ok := t.(*types.Named); ok {
		if mode == state && e.states[n.Obj()] != nil {
			return planState
		}
		if n.Obj().Pkg() == nil || n.Obj().Pkg().Path() != e.pkg || hasCustomCodec(n) || n.TypeArgs().Len() > 0 {
			return planGeneric
		}
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		if mode == state && e.planOf(u.Elem(), mode) != planGeneric {
			return planPtr
		}
	case *types.Slice:
		if e.planOf(u.Elem(), mode) != planGeneric {
			return planSlice
		}
	case *types.Array:
		if b, ok := types.Unalias(u.Elem()).Underlying().(*types.Basic); ok && b.Kind() == types.Byte {
			return planGeneric // msgpack writes byte arrays as bin
		}
		if e.planOf(u.Elem(), mode) != planGeneric {
			return planArray
		}
	case *types.Map:
		if e.planOf(u.Key(), mode) == planBasic && e.planOf(u.Elem(), mode) != planGeneric {
			return planMap
		}
	}
	return planGeneric
}

// fresh returns a variable name not yet used in the function being
// written: v, v1, v2...
func (e *emitter) fresh(base string) string {
	n := e.names[base]
	e.names[base] = n + 1
	if n == 0 {
		return base
	}
	return base + strconv.Itoa(n)
}

// scoped runs f, then forgets the names f took: for sibling blocks (the
// cases of a switch), which may reuse them.
func (e *emitter) scoped(f func()) {
	saved := make(map[string]int, len(e.names))
	for k, v := range e.names {
		saved[k] = v
	}
	f()
	e.names = saved
}

// startFunc resets the variable names for a new function.
func (e *emitter) startFunc() { e.names = map[string]int{} }

func errCheck() jen.Code { return jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())) }

func deref(x jen.Code) *jen.Statement { return jen.Parens(jen.Op("*").Add(x)) }

// encode writes the statements that encode x (an addressable expression of
// type t) with enc.
func (e *emitter) encode(g *jen.Group, x jen.Code, t types.Type, mode checkMode) {
	switch e.planOf(t, mode) {
	case planGeneric:
		g.Add(returnIfErr(jen.Id("enc").Dot("Encode").Call(jen.Op("&").Add(x))))
	case planBasic:
		c := codecOf(t)
		v := jen.Add(x)
		if !types.Identical(t, c.Wire) {
			v = wireType(c.Wire).Call(x)
		}
		g.Add(returnIfErr(jen.Id("enc").Dot(c.Enc).Call(v)))
	case planSession:
		g.Add(returnIfErr(jen.Id("enc").Dot("EncodeUint").Call(jen.Id("copycatSessionID").Call(x))))
	case planState:
		n := types.Unalias(t).(*types.Named)
		g.Add(returnIfErr(jen.Id(stateHelper("encode", n.Obj())).Call(jen.Id("enc"), jen.Op("&").Add(x))))
	case planPtr:
		elem := types.Unalias(t).Underlying().(*types.Pointer).Elem()
		g.If(jen.Add(x).Op("==").Nil()).Block(returnIfErr(jen.Id("enc").Dot("EncodeNil").Call())).Else().BlockFunc(func(g *jen.Group) {
			if e.planOf(elem, mode) == planState {
				n := types.Unalias(elem).(*types.Named)
				g.Add(returnIfErr(jen.Id(stateHelper("encode", n.Obj())).Call(jen.Id("enc"), x)))
				return
			}
			e.encode(g, deref(x), elem, mode)
		})
	case planSlice:
		elem := types.Unalias(t).Underlying().(*types.Slice).Elem()
		i := e.fresh("i")
		g.If(jen.Add(x).Op("==").Nil()).Block(returnIfErr(jen.Id("enc").Dot("EncodeNil").Call())).Else().BlockFunc(func(g *jen.Group) {
			g.Add(returnIfErr(jen.Id("enc").Dot("EncodeArrayLen").Call(jen.Len(x))))
			g.For(jen.Id(i).Op(":=").Range().Add(x)).BlockFunc(func(g *jen.Group) {
				e.encode(g, jen.Add(x).Index(jen.Id(i)), elem, mode)
			})
		})
	case planArray:
		a := types.Unalias(t).Underlying().(*types.Array)
		i := e.fresh("i")
		g.Add(returnIfErr(jen.Id("enc").Dot("EncodeArrayLen").Call(jen.Lit(int(a.Len())))))
		g.For(jen.Id(i).Op(":=").Range().Add(x)).BlockFunc(func(g *jen.Group) {
			e.encode(g, jen.Add(x).Index(jen.Id(i)), a.Elem(), mode)
		})
	case planMap:
		m := types.Unalias(t).Underlying().(*types.Map)
		k, v := e.fresh("k"), e.fresh("v")
		g.If(jen.Add(x).Op("==").Nil()).Block(returnIfErr(jen.Id("enc").Dot("EncodeNil").Call())).Else().BlockFunc(func(g *jen.Group) {
			g.Add(returnIfErr(jen.Id("enc").Dot("EncodeMapLen").Call(jen.Len(x))))
			if orderedKey(m.Key()) {
				// Keys in order: every member writes the same bytes for
				// the same state, so state images can be compared by digest.
				g.For(jen.List(jen.Id("_"), jen.Id(k)).Op(":=").Range().Qual("slices", "Sorted").Call(jen.Qual("maps", "Keys").Call(x))).BlockFunc(func(g *jen.Group) {
					g.Id(v).Op(":=").Add(x).Index(jen.Id(k))
					e.encode(g, jen.Id(k), m.Key(), mode)
					e.encode(g, jen.Id(v), m.Elem(), mode)
				})
				return
			}
			g.For(jen.List(jen.Id(k), jen.Id(v)).Op(":=").Range().Add(x)).BlockFunc(func(g *jen.Group) {
				e.encode(g, jen.Id(k), m.Key(), mode)
				e.encode(g, jen.Id(v), m.Elem(), mode)
			})
		})
	}
}

// decode writes the statements that decode into x (an addressable
// expression of type t) with dec. Lengths read from the input bound what
// is preallocated by allocLimit; the rest grows as elements arrive.
func (e *emitter) decode(g *jen.Group, x jen.Code, t types.Type, mode checkMode) {
	switch e.planOf(t, mode) {
	case planGeneric:
		g.Add(returnIfErr(jen.Id("dec").Dot("Decode").Call(jen.Op("&").Add(x))))
	case planBasic:
		c := codecOf(t)
		v := e.fresh("v")
		g.List(jen.Id(v), jen.Err()).Op(":=").Id("dec").Dot(c.Dec).Call()
		g.Add(errCheck())
		g.Add(x).Op("=").Add(e.convert(jen.Id(v), t, c.Wire))
	case planSession:
		id := e.fresh("id")
		g.List(jen.Id(id), jen.Err()).Op(":=").Id("dec").Dot("DecodeUint64").Call()
		g.Add(errCheck())
		g.Add(x).Op("=").Id("copycatRestoredSession").Call(jen.Id(id))
	case planState:
		n := types.Unalias(t).(*types.Named)
		g.Add(returnIfErr(jen.Id(stateHelper("decode", n.Obj())).Call(jen.Id("dec"), jen.Op("&").Add(x))))
	case planPtr:
		elem := types.Unalias(t).Underlying().(*types.Pointer).Elem()
		c, p := e.fresh("c"), e.fresh("p")
		g.List(jen.Id(c), jen.Err()).Op(":=").Id("dec").Dot("PeekCode").Call()
		g.Add(errCheck())
		g.If(jen.Id(c).Op("==").Qual(msgpcodePath, "Nil")).Block(
			returnIfErr(jen.Id("dec").Dot("DecodeNil").Call()),
			jen.Add(x).Op("=").Nil(),
		).Else().BlockFunc(func(g *jen.Group) {
			g.Id(p).Op(":=").New(e.typ(elem))
			if e.planOf(elem, mode) == planState {
				n := types.Unalias(elem).(*types.Named)
				g.Add(returnIfErr(jen.Id(stateHelper("decode", n.Obj())).Call(jen.Id("dec"), jen.Id(p))))
			} else {
				e.decode(g, deref(jen.Id(p)), elem, mode)
			}
			g.Add(x).Op("=").Id(p)
		})
	case planSlice:
		elem := types.Unalias(t).Underlying().(*types.Slice).Elem()
		n, s, i, v := e.fresh("n"), e.fresh("s"), e.fresh("i"), e.fresh("v")
		g.List(jen.Id(n), jen.Err()).Op(":=").Id("dec").Dot("DecodeArrayLen").Call()
		g.Add(errCheck())
		g.If(jen.Id(n).Op("<").Lit(0)).Block(jen.Add(x).Op("=").Nil()).Else().BlockFunc(func(g *jen.Group) {
			g.Id(s).Op(":=").Make(e.typ(t), jen.Lit(0), jen.Min(jen.Id(n), jen.Lit(allocLimit)))
			g.For(jen.Id(i).Op(":=").Lit(0), jen.Id(i).Op("<").Id(n), jen.Id(i).Op("++")).BlockFunc(func(g *jen.Group) {
				val := e.decodeValue(g, v, elem, mode)
				g.Id(s).Op("=").Append(jen.Id(s), val)
			})
			g.Add(x).Op("=").Id(s)
		})
	case planArray:
		a := types.Unalias(t).Underlying().(*types.Array)
		n, i := e.fresh("n"), e.fresh("i")
		g.List(jen.Id(n), jen.Err()).Op(":=").Id("dec").Dot("DecodeArrayLen").Call()
		g.Add(errCheck())
		g.For(jen.Id(i).Op(":=").Lit(0), jen.Id(i).Op("<").Id(n), jen.Id(i).Op("++")).BlockFunc(func(g *jen.Group) {
			g.If(jen.Id(i).Op(">=").Len(x)).Block(returnIfErr(jen.Id("dec").Dot("Skip").Call()), jen.Continue())
			e.decode(g, jen.Add(x).Index(jen.Id(i)), a.Elem(), mode)
		})
	case planMap:
		m := types.Unalias(t).Underlying().(*types.Map)
		n, mm, i, k, v := e.fresh("n"), e.fresh("m"), e.fresh("i"), e.fresh("k"), e.fresh("v")
		g.List(jen.Id(n), jen.Err()).Op(":=").Id("dec").Dot("DecodeMapLen").Call()
		g.Add(errCheck())
		g.If(jen.Id(n).Op("<").Lit(0)).Block(jen.Add(x).Op("=").Nil()).Else().BlockFunc(func(g *jen.Group) {
			g.Id(mm).Op(":=").Make(e.typ(t), jen.Min(jen.Id(n), jen.Lit(allocLimit)))
			g.For(jen.Id(i).Op(":=").Lit(0), jen.Id(i).Op("<").Id(n), jen.Id(i).Op("++")).BlockFunc(func(g *jen.Group) {
				key := e.decodeValue(g, k, m.Key(), mode)
				val := e.decodeValue(g, v, m.Elem(), mode)
				g.Id(mm).Index(key).Op("=").Add(val)
			})
			g.Add(x).Op("=").Id(mm)
		})
	}
}

// decodeValue writes the statements that decode a value of type t into a
// new variable named name, and returns the expression of the value: for
// basic types the decoded wire value, converted.
func (e *emitter) decodeValue(g *jen.Group, name string, t types.Type, mode checkMode) jen.Code {
	if e.planOf(t, mode) == planBasic {
		c := codecOf(t)
		g.List(jen.Id(name), jen.Err()).Op(":=").Id("dec").Dot(c.Dec).Call()
		g.Add(errCheck())
		return e.convert(jen.Id(name), t, c.Wire)
	}
	g.Var().Id(name).Add(e.typ(t))
	e.decode(g, jen.Id(name), t, mode)
	return jen.Id(name)
}

// convert converts a decoded wire value to t.
func (e *emitter) convert(v jen.Code, t, wire types.Type) jen.Code {
	if types.Identical(t, wire) {
		return v
	}
	switch types.Unalias(t).(type) {
	case *types.Named, *types.Basic:
		return jen.Add(e.typ(t)).Call(v)
	}
	return jen.Parens(e.typ(t)).Call(v)
}

// resolve writes the statements that replace the session placeholders a
// decode left in x (addressable, of type t) with the sessions ctx knows.
func (e *emitter) resolve(g *jen.Group, x jen.Code, t types.Type) {
	if !hasSessions(t, e.states) {
		return
	}
	t = types.Unalias(t)
	if isNamed(t, runtimePath, "Session") {
		g.Add(x).Op("=").Id("copycatResolveSession").Call(jen.Id("ctx"), x)
		return
	}
	if n, ok := t.(*types.Named); ok && e.states[n.Obj()] != nil {
		g.Id(stateHelper("resolve", n.Obj())).Call(jen.Op("&").Add(x), jen.Id("ctx"))
		return
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		g.If(jen.Add(x).Op("!=").Nil()).BlockFunc(func(g *jen.Group) {
			if n, ok := types.Unalias(u.Elem()).(*types.Named); ok && e.states[n.Obj()] != nil {
				g.Id(stateHelper("resolve", n.Obj())).Call(x, jen.Id("ctx"))
				return
			}
			e.resolve(g, deref(x), u.Elem())
		})
	case *types.Slice, *types.Array:
		elem := u.(interface{ Elem() types.Type }).Elem()
		i := e.fresh("i")
		g.For(jen.Id(i).Op(":=").Range().Add(x)).BlockFunc(func(g *jen.Group) {
			e.resolve(g, jen.Add(x).Index(jen.Id(i)), elem)
		})
	case *types.Map:
		k, v := e.fresh("k"), e.fresh("v")
		if byValue(u.Elem()) {
			g.For(jen.List(jen.Id(k), jen.Id(v)).Op(":=").Range().Add(x)).BlockFunc(func(g *jen.Group) {
				e.resolve(g, jen.Id(v), u.Elem())
				g.Add(x).Index(jen.Id(k)).Op("=").Id(v)
			})
			return
		}
		g.For(jen.List(jen.Id("_"), jen.Id(v)).Op(":=").Range().Add(x)).BlockFunc(func(g *jen.Group) {
			e.resolve(g, jen.Id(v), u.Elem())
		})
	default:
		panic(fmt.Sprintf("gen: resolve sessions in %s", t))
	}
}

// byValue reports whether a map value of type t holds its sessions in
// itself (a session, a struct or an array), so resolving them in a copy
// must be stored back; pointers, slices and maps share what they hold.
func byValue(t types.Type) bool {
	switch types.Unalias(t).Underlying().(type) {
	case *types.Pointer, *types.Slice, *types.Map:
		return false
	}
	return true
}

// stateTypeCodec writes a state type's helpers: its fields as a map by
// name, like the resource's own snapshot, so state written before a field
// was added or removed still restores.
func (e *emitter) stateTypeCodec(s *StateType) {
	f := e.f
	T := s.Obj.Name()
	enc, dec, res := stateHelper("encode", s.Obj), stateHelper("decode", s.Obj), stateHelper("resolve", s.Obj)
	skipped := ""
	if len(s.Skipped) > 0 {
		skipped = fmt.Sprintf("\nFields left out (runtime handles, funcs, chans; Init rebuilds them): %s.", joinNames(s.Skipped))
	}
	f.Add(doc("%s writes a value of type %s in a snapshot: every field by name.%s", enc, T, skipped))
	e.startFunc()
	f.Func().Id(enc).Params(jen.Id("enc").Op("*").Add(mp("Encoder")), jen.Id("x").Op("*").Id(T)).Error().BlockFunc(func(g *jen.Group) {
		e.encodeFields(g, s.Fields)
	})
	f.Add(doc("%s reads a value of type %s from a snapshot; fields the snapshot\ndoes not hold keep their values.", dec, T))
	e.startFunc()
	f.Func().Id(dec).Params(jen.Id("dec").Op("*").Add(mp("Decoder")), jen.Id("x").Op("*").Id(T)).Error().BlockFunc(func(g *jen.Group) {
		e.decodeFields(g, s.Fields)
	})
	if s.Sessions {
		f.Add(doc("%s replaces the session IDs %s read with the sessions ctx knows.", res, dec))
		e.startFunc()
		f.Func().Id(res).Params(jen.Id("x").Op("*").Id(T), jen.Id("ctx").Add(rt("Context"))).BlockFunc(func(g *jen.Group) {
			for _, fl := range s.Fields {
				e.resolve(g, jen.Id("x").Dot(fl.Var), fl.Type)
			}
		})
	}
}

// encodeFields writes a struct's fields as a map by name.
func (e *emitter) encodeFields(g *jen.Group, fields []*Field) {
	g.Add(returnIfErr(jen.Id("enc").Dot("EncodeMapLen").Call(jen.Lit(len(fields)))))
	for _, fl := range fields {
		g.Add(returnIfErr(jen.Id("enc").Dot("EncodeString").Call(jen.Lit(fl.Var))))
		if fl.Snapshotter {
			buf := e.fresh("buf")
			g.Var().Id(buf).Qual("bytes", "Buffer")
			g.Add(returnIfErr(jen.Id("x").Dot(fl.Name).Dot("Snapshot").Call(jen.Op("&").Id(buf))))
			g.Add(returnIfErr(jen.Id("enc").Dot("EncodeBytes").Call(jen.Id(buf).Dot("Bytes").Call())))
			continue
		}
		e.encode(g, jen.Id("x").Dot(fl.Name), fl.Type, state)
	}
	g.Return(jen.Nil())
}

// decodeFields reads what encodeFields wrote, skipping unknown names.
func (e *emitter) decodeFields(g *jen.Group, fields []*Field) {
	g.List(jen.Id("n"), jen.Err()).Op(":=").Id("dec").Dot("DecodeMapLen").Call()
	g.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err()))
	e.names["n"], e.names["i"], e.names["key"] = 1, 1, 1
	g.For(jen.Id("i").Op(":=").Lit(0), jen.Id("i").Op("<").Id("n"), jen.Id("i").Op("++")).Block(
		jen.List(jen.Id("key"), jen.Err()).Op(":=").Id("dec").Dot("DecodeString").Call(),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())),
		jen.Switch(jen.Id("key")).BlockFunc(func(sw *jen.Group) {
			for _, fl := range fields {
				sw.Case(jen.Lit(fl.Var)).BlockFunc(func(g *jen.Group) {
					if fl.Snapshotter {
						g.List(jen.Id("b"), jen.Err()).Op(":=").Id("dec").Dot("DecodeBytes").Call()
						g.Add(errCheck())
						g.Add(returnIfErr(jen.Id("x").Dot(fl.Name).Dot("Restore").Call(jen.Qual("bytes", "NewReader").Call(jen.Id("b")))))
						return
					}
					e.scoped(func() { e.decode(g, jen.Id("x").Dot(fl.Name), fl.Type, state) })
				})
			}
			sw.Default().Block(returnIfErr(jen.Id("dec").Dot("Skip").Call()))
		}),
	)
	g.Return(jen.Nil())
}

// sessionHelpersCode writes the package's session placeholder and helpers.
func (e *emitter) sessionHelpersCode() {
	f := e.f
	f.Add(doc("%s", "copycatSession stands for a session a snapshot named by ID, until\nResolveSessions replaces it with the session itself (Init does), or for a\nsession that was no longer open then: it reports itself closed and drops\nwhat is published to it."))
	f.Type().Id("copycatSession").Uint64()
	f.Func().Params(jen.Id("s").Id("copycatSession")).Id("ID").Params().Uint64().Block(jen.Return(jen.Uint64().Call(jen.Id("s"))))
	f.Func().Params(jen.Id("s").Id("copycatSession")).Id("State").Params().Add(rt("SessionState")).Block(jen.Return(rt("SessionClosed")))
	f.Func().Params(jen.Id("s").Id("copycatSession")).Id("Publish").Params(jen.Any()).Block()
	f.Add(doc("%s", "copycatSessionID is what a snapshot holds for a session: its ID, 0 for nil."))
	f.Func().Id("copycatSessionID").Params(jen.Id("s").Add(rt("Session"))).Uint64().Block(
		jen.If(jen.Id("s").Op("==").Nil()).Block(jen.Return(jen.Lit(0))),
		jen.Return(jen.Id("s").Dot("ID").Call()),
	)
	f.Add(doc("%s", "copycatRestoredSession is the placeholder for a session ID read from a\nsnapshot."))
	f.Func().Id("copycatRestoredSession").Params(jen.Id("id").Uint64()).Add(rt("Session")).Block(
		jen.If(jen.Id("id").Op("==").Lit(0)).Block(jen.Return(jen.Nil())),
		jen.Return(jen.Id("copycatSession").Call(jen.Id("id"))),
	)
	f.Add(doc("%s", "copycatResolveSession returns the open session a placeholder stands for,\nor s itself."))
	f.Func().Id("copycatResolveSession").Params(jen.Id("ctx").Add(rt("Context")), jen.Id("s").Add(rt("Session"))).Add(rt("Session")).Block(
		jen.If(jen.List(jen.Id("p"), jen.Id("ok")).Op(":=").Id("s").Assert(jen.Id("copycatSession")), jen.Id("ok")).Block(
			jen.If(jen.Id("open").Op(":=").Id("ctx").Dot("Session").Call(jen.Id("p").Dot("ID").Call()), jen.Id("open").Op("!=").Nil()).Block(jen.Return(jen.Id("open"))),
		),
		jen.Return(jen.Id("s")),
	)
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

// orderedKey reports whether map keys of type t can be sorted with <.
func orderedKey(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Info()&types.IsOrdered != 0
}
