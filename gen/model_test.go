package gen

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMarker(t *testing.T) {
	for _, tc := range []struct {
		text     string
		isMarker bool
		kind     string
		args     map[string]string
		problems int
	}{
		{"// plain comment", false, "", nil, 0},
		{"//go:generate x", false, "", nil, 0},
		{"//copycat:resource", true, "resource", map[string]string{}, 0},
		{"//copycat:resource name=a.B compaction=release", true, "resource", map[string]string{"name": "a.B", "compaction": "release"}, 0},
		{"//copycat:query consistency=lease code=12", true, "query", map[string]string{"consistency": "lease", "code": "12"}, 0},
		{"//copycat:query consistency=fast", true, "query", map[string]string{}, 1},
		{"//copycat:command code=65536", true, "command", map[string]string{}, 1},
		{"//copycat:command code", true, "command", map[string]string{}, 1},
		{"//copycat:command x=1 y=2", true, "command", map[string]string{}, 2},
		{"//copycat:event code=1 code=2", true, "event", map[string]string{"code": "1"}, 1},
		{"//copycat:nope", true, "nope", nil, 1},
		{"//copycat:", true, "", nil, 1},
		{"// copycat:command", true, "", nil, 1},
	} {
		m, ok, problems := parseMarker(tc.text)
		assert.Equal(t, tc.isMarker, ok, tc.text)
		assert.Len(t, problems, tc.problems, "%s: %v", tc.text, problems)
		if tc.kind != "" {
			assert.Equal(t, tc.kind, m.Kind, tc.text)
		}
		if tc.args != nil {
			assert.Equal(t, tc.args, m.Args, tc.text)
		}
	}
	m, _, _ := parseMarker("//copycat:command code=42")
	code, ok := m.code()
	assert.True(t, ok)
	assert.Equal(t, uint16(42), code)
}

func TestCode(t *testing.T) {
	// Stable: these values are on the wire; changing the hash breaks
	// mixed-version clusters.
	assert.Equal(t, uint16(14295), Code("Add"))
	assert.Equal(t, uint16(34912), Code("Get"))
	assert.Equal(t, Code("Add"), Code("Add"))
	assert.NotEqual(t, Code("Add"), Code("add"))
}

func TestCodecOf(t *testing.T) {
	pkg := types.NewPackage("example.com/p", "p")
	named := func(name string, u types.Type) *types.Named {
		return types.NewNamed(types.NewTypeName(token.NoPos, pkg, name, nil), u, nil)
	}
	timePkg := types.NewPackage("time", "time")
	duration := types.NewNamed(types.NewTypeName(token.NoPos, timePkg, "Duration", nil), types.Typ[types.Int64], nil)
	for _, tc := range []struct {
		t   types.Type
		enc string
	}{
		{types.Typ[types.Int], "EncodeInt"},
		{types.Typ[types.Int8], "EncodeInt"},
		{types.Typ[types.Uint32], "EncodeUint"},
		{types.Typ[types.Uintptr], "EncodeUint"},
		{types.Typ[types.Float32], "EncodeFloat32"},
		{types.Typ[types.Float64], "EncodeFloat64"},
		{types.Typ[types.Bool], "EncodeBool"},
		{types.Typ[types.String], "EncodeString"},
		{types.NewSlice(types.Typ[types.Byte]), "EncodeBytes"},
		{duration, "EncodeDuration"},
		{named("Celsius", types.Typ[types.Float64]), "EncodeFloat64"},
		{types.NewSlice(types.Typ[types.Int]), ""},
		{types.NewMap(types.Typ[types.String], types.Typ[types.Int]), ""},
		{types.NewPointer(types.Typ[types.Int]), ""},
		{named("Point", types.NewStruct(nil, nil)), ""},
	} {
		assert.Equal(t, tc.enc, codecOf(tc.t).Enc, tc.t.String())
	}
}

func TestEncodable(t *testing.T) {
	pkg := types.NewPackage("example.com/p", "p")
	field := func(name string, typ types.Type) *types.Var {
		return types.NewField(token.NoPos, pkg, name, typ, false)
	}
	named := func(name string, u types.Type) *types.Named {
		return types.NewNamed(types.NewTypeName(token.NoPos, pkg, name, nil), u, nil)
	}
	hidden := named("Hidden", types.NewStruct([]*types.Var{field("X", types.Typ[types.Int]), field("y", types.Typ[types.Int])}, nil))
	tagged := named("Tagged", types.NewStruct([]*types.Var{field("X", types.Typ[types.Int]), field("y", types.Typ[types.Int])}, []string{"", `msgpack:"-"`}))
	lower := named("point", types.NewStruct([]*types.Var{field("X", types.Typ[types.Int])}, nil))
	for _, tc := range []struct {
		t        types.Type
		mode     checkMode
		contains string
	}{
		{types.Typ[types.Int], wire, ""},
		{types.NewMap(types.Typ[types.String], types.NewSlice(types.Typ[types.Float64])), wire, ""},
		{types.Typ[types.Complex64], wire, "two floats"},
		{types.NewChan(types.SendRecv, types.Typ[types.Int]), wire, "channels"},
		{types.NewSignatureType(nil, nil, nil, nil, nil, false), wire, "funcs"},
		{types.NewInterfaceType(nil, nil), wire, "interface"},
		{hidden, wire, "field y of Hidden is unexported"},
		{tagged, wire, ""},
		{lower, wire, "type point is unexported"},
		{lower, state, ""},
		{types.NewStruct(nil, nil), wire, "anonymous struct"},
		{types.NewStruct(nil, nil), state, ""},
		{types.NewMap(hidden, types.Typ[types.Int]), state, "map key"},
		{types.Universe.Lookup("error").Type(), wire, "error value"},
	} {
		got := encodable(tc.t, tc.mode)
		if tc.contains == "" {
			assert.Empty(t, got, tc.t.String())
		} else {
			assert.Contains(t, got, tc.contains, tc.t.String())
		}
	}
}

// buildFrom type-checks one file (importing only the standard library)
// and builds its model.
func buildFrom(t *testing.T, src string) (*Package, Diagnostics) {
	t.Helper()
	return buildWith(t, src, func(*token.FileSet) types.Importer { return importer.Default() })
}

// buildWith is buildFrom with an importer of choice.
func buildWith(t *testing.T, src string, imp func(*token.FileSet) types.Importer) (*Package, Diagnostics) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "/src/p/p.go", src, parser.ParseComments)
	require.NoError(t, err)
	info := &types.Info{Defs: map[*ast.Ident]types.Object{}, Uses: map[*ast.Ident]types.Object{}, Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{Importer: imp(fset)}
	tp, err := conf.Check("example.com/p", fset, []*ast.File{f}, info)
	require.NoError(t, err)
	b := newBuilder(fset, nil)
	src2 := &source{Path: "example.com/p", Name: tp.Name(), Dir: "/src/p", Types: tp, Files: []*ast.File{f}, Info: info}
	b.addRoot(src2)
	p := b.buildPackage(src2)
	return p, b.d.list.sort()
}

func TestBuildModel(t *testing.T) {
	p, ds := buildFrom(t, `package p

import "time"

// Timer waits.
//
//copycat:resource name=t.Timer
type Timer struct {
	left time.Duration
	ch   chan int
}

// Wait waits.
//
//copycat:command code=3
func (x *Timer) Wait(d time.Duration, names ...string) (ok bool, err error) { return true, nil }

// Left reads.
//
//copycat:query consistency=sequential
func (x *Timer) Left() time.Duration { return x.left }

// Delete is a hook.
func (x *Timer) Delete() {}

// Fired is an event.
//
//copycat:event
type Fired struct{ At time.Time }
`)
	require.Empty(t, ds)
	require.Len(t, p.Resources, 1)
	r := p.Resources[0]
	assert.Equal(t, "Timer", r.Name)
	assert.Equal(t, "t.Timer", r.TypeName)
	assert.Equal(t, "/src/p/p.go", r.File)
	assert.Equal(t, "Timer waits.", r.Doc)
	assert.Equal(t, CompactionSnapshot, r.Compaction)
	assert.Equal(t, map[string][]string{"Delete": {""}}, r.Hooks)
	require.Len(t, r.Ops, 2)
	left, wait := r.Ops[0], r.Ops[1]
	assert.Equal(t, "Left", left.Name)
	assert.Equal(t, KindQuery, left.Kind)
	assert.Equal(t, "sequential", left.Consistency)
	assert.Equal(t, Code("Left"), left.Code)
	assert.Equal(t, "Value", left.Result.Name)
	assert.Equal(t, "EncodeDuration", left.Result.Codec.Enc)
	assert.Equal(t, uint16(3), wait.Code)
	assert.True(t, wait.Variadic)
	assert.True(t, wait.Error)
	assert.Equal(t, "Ok", wait.Result.Name)
	require.Len(t, wait.Params, 2)
	assert.Equal(t, "D", wait.Params[0].Name)
	assert.Equal(t, "Names", wait.Params[1].Name)
	assert.True(t, wait.Params[1].Codec.Generic())
	require.Len(t, r.Events, 1)
	assert.Equal(t, "Fired", r.Events[0].Name)
	require.Len(t, r.State, 1, "the chan is left out")
	assert.Equal(t, "left", r.State[0].Name)
	assert.Equal(t, []string{"ch"}, r.Skipped)

	out, err := Emit(p)
	require.NoError(t, err)
	require.Contains(t, out, "/src/p/p_copycat.go")
	code := string(out["/src/p/p_copycat.go"])
	assert.Contains(t, code, "func (cl *TimerClient) Wait(ctx context.Context, d time.Duration, names ...string) (bool, error)")
	assert.Contains(t, code, "func (cl *TimerClient) OnFired(f func(Fired)) (cancel func())")
	again, err := Emit(p)
	require.NoError(t, err)
	assert.Equal(t, out, again, "emission is deterministic")
}

func TestBuildModel_Problems(t *testing.T) {
	_, ds := buildFrom(t, `package p

//copycat:resource
type R struct{}

//copycat:command
func (r *R) A(c chan int) {}

//copycat:command code=9
func (r *R) B() {}

//copycat:command code=9
func (r *R) C() {}
`)
	require.Len(t, ds, 2)
	assert.Equal(t, 7, ds[0].Pos.Line)
	assert.Contains(t, ds[0].Msg, "parameter c of A: channels")
	assert.Equal(t, 13, ds[1].Pos.Line)
	assert.Contains(t, ds[1].Msg, "operation C has code 9, like operation B")
	assert.Contains(t, ds.Error(), "/src/p/p.go:7:15: parameter c of A")
}

func TestBuildModel_State(t *testing.T) {
	// The runtime package is imported from source.
	p, ds := buildWith(t, `package p

import "github.com/copycat-go/copycat/runtime"

type entry struct {
	value string
	owner runtime.Session
	timer runtime.Timer
}

type plain struct{ n int }

//copycat:resource
type R struct {
	entries map[string]entry
	queue   []*plain
	holder  runtime.Session
	ctx     runtime.Context
}
`, func(fset *token.FileSet) types.Importer { return importer.ForCompiler(fset, "source", nil) })
	require.Empty(t, ds)
	r := p.Resources[0]
	assert.True(t, r.Sessions)
	assert.Equal(t, []string{"ctx"}, r.Skipped)
	require.Len(t, p.StateTypes, 2)
	assert.Equal(t, "entry", p.StateTypes[0].Obj.Name())
	assert.True(t, p.StateTypes[0].Sessions)
	assert.Equal(t, []string{"timer"}, p.StateTypes[0].Skipped)
	assert.Equal(t, "plain", p.StateTypes[1].Obj.Name())
	assert.False(t, p.StateTypes[1].Sessions)
}
