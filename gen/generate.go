package gen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Options configure Generate.
type Options struct {
	// Dir is the directory patterns are relative to ("" is the current one).
	Dir string
	// Patterns are package patterns as for go build ("." when empty).
	Patterns []string
	// Env overrides the environment of the go command (nil: os.Environ()).
	Env []string
}

// Result is what a generation run wants on disk.
type Result struct {
	// Files maps each generated file's path to its content.
	Files map[string][]byte
	// Stale lists generated files (ours: *_copycat.go with our header)
	// that the packages no longer need, to be removed.
	Stale []string
	// Packages are the models the files were emitted from.
	Packages []*Package
}

// Generate loads the packages, builds their models and emits the files:
// a pure function of the source. It writes nothing. Problems with the
// source come back as Diagnostics.
func Generate(opts Options) (*Result, error) {
	srcs, fset, foreign, err := load(opts)
	if err != nil {
		return nil, err
	}
	b := newBuilder(fset, foreign)
	for _, src := range srcs {
		b.addRoot(src)
	}
	res := &Result{Files: map[string][]byte{}}
	for _, src := range srcs {
		res.Packages = append(res.Packages, b.buildPackage(src))
	}
	if len(b.d.list) > 0 {
		return nil, b.d.list.sort()
	}
	for _, p := range res.Packages {
		files, err := Emit(p)
		if err != nil {
			return nil, err
		}
		for path, data := range files {
			res.Files[path] = data
		}
		owned, err := ownedFiles(p.Dir)
		if err != nil {
			return nil, err
		}
		for _, path := range owned {
			if _, keep := files[path]; !keep {
				res.Stale = append(res.Stale, path)
			}
		}
	}
	sort.Strings(res.Stale)
	return res, nil
}

// load runs one packages.Load with the copycatgen build tag.
func load(opts Options) ([]*source, *token.FileSet, func(string) (*source, error), error) {
	patterns := opts.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	fset := token.NewFileSet()
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports,
		Dir:        opts.Dir,
		Env:        opts.Env,
		Fset:       fset,
		BuildFlags: []string{"-tags=" + BuildTag},
		ParseFile: func(fset *token.FileSet, filename string, src []byte) (*ast.File, error) {
			return parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
		},
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gen: load %s: %w", strings.Join(patterns, " "), err)
	}
	var problems Diagnostics
	var srcs []*source
	for _, p := range pkgs {
		if len(p.Errors) > 0 && !hasMarkers(p) {
			// A package that declares no resource is none of the
			// generator's business, even if it does not build without its
			// generated dependencies (it may use another package's
			// generated names, which the copycatgen tag hides).
			continue
		}
		for _, e := range p.Errors {
			if strings.HasPrefix(e.Msg, "# ") && len(p.Errors) > 1 {
				continue // the go command's summary of errors listed one by one
			}
			problems = append(problems, packageError(e))
		}
		if len(p.Errors) > 0 || len(p.GoFiles) == 0 {
			continue
		}
		srcs = append(srcs, &source{
			Path:  p.PkgPath,
			Name:  p.Name,
			Dir:   filepath.Dir(p.GoFiles[0]),
			Types: p.Types,
			Files: p.Syntax,
			Info:  p.TypesInfo,
		})
	}
	if len(problems) > 0 {
		return nil, nil, nil, problems.sort()
	}
	if len(srcs) == 0 {
		return nil, nil, nil, fmt.Errorf("gen: no Go packages match %s", strings.Join(patterns, " "))
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Path < srcs[j].Path })
	// Packages a resource embeds from are parsed (not type-checked again:
	// their types come with the roots') only when a resource needs them.
	foreign := func(path string) (*source, error) {
		ps, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedFiles, Dir: opts.Dir, Env: opts.Env, BuildFlags: cfg.BuildFlags}, path)
		if err != nil || len(ps) != 1 || len(ps[0].GoFiles) == 0 {
			return nil, fmt.Errorf("gen: locate %s: %v", path, err)
		}
		src := &source{Path: path, Name: ps[0].Name, Dir: filepath.Dir(ps[0].GoFiles[0])}
		for _, name := range ps[0].GoFiles {
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				return nil, err
			}
			src.Files = append(src.Files, f)
		}
		return src, nil
	}
	return srcs, fset, foreign, nil
}

// packageError turns a load error into a diagnostic.
func packageError(e packages.Error) Diagnostic {
	d := Diagnostic{Msg: e.Msg}
	// e.Pos is "file:line:col" or "file:line" or "-".
	parts := strings.Split(e.Pos, ":")
	if len(parts) >= 2 {
		var line, col int
		fmt.Sscanf(parts[1], "%d", &line)
		if len(parts) >= 3 {
			fmt.Sscanf(parts[2], "%d", &col)
		}
		d.Pos = token.Position{Filename: parts[0], Line: line, Column: col}
	}
	return d
}

// ownedFiles lists the generated files in dir: *_copycat.go starting with
// the header.
func ownedFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), OutputSuffix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if ok, err := isOurs(path); err != nil {
			return nil, err
		} else if ok {
			out = append(out, path)
		}
	}
	return out, nil
}

func isOurs(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("gen: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	return strings.TrimRight(line, "\r\n") == Header, nil
}

// Changes lists what writing the result would change: files to create or
// rewrite, then files to remove.
func (r *Result) Changes() (write, remove []string, err error) {
	for _, path := range sortedKeys(r.Files) {
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("gen: %w", err)
		}
		if err != nil || !bytes.Equal(old, r.Files[path]) {
			write = append(write, path)
		}
	}
	return write, r.Stale, nil
}

// Write writes the files that changed and removes stale ones; it returns
// the paths it touched.
func (r *Result) Write() ([]string, error) {
	write, remove, err := r.Changes()
	if err != nil {
		return nil, err
	}
	for _, path := range write {
		if err := os.WriteFile(path, r.Files[path], 0o644); err != nil {
			return nil, fmt.Errorf("gen: %w", err)
		}
	}
	for _, path := range remove {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("gen: %w", err)
		}
	}
	return append(write, remove...), nil
}

// hasMarkers reports whether any of the package's files contains a
// copycat marker.
func hasMarkers(p *packages.Package) bool {
	for _, f := range p.GoFiles {
		b, err := os.ReadFile(f)
		if err != nil || bytes.Contains(b, []byte("//copycat:")) {
			return true // unreadable: let the error speak
		}
	}
	return len(p.GoFiles) == 0
}
