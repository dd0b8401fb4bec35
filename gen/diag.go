package gen

import (
	"fmt"
	"go/token"
	"sort"
	"strings"
)

// A Diagnostic is one problem found in the source: where, and what to do
// about it.
type Diagnostic struct {
	Pos token.Position
	Msg string
}

func (d Diagnostic) String() string {
	if !d.Pos.IsValid() {
		return d.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.Pos.Filename, d.Pos.Line, d.Pos.Column, d.Msg)
}

// Diagnostics is the error Generate returns when the source has problems:
// every problem found, sorted by position.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders diagnostics by file, line, column and message, and drops
// exact duplicates (an embedded resource seen from two outer ones).
func (ds Diagnostics) sort() Diagnostics {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return ds[i].Msg < ds[j].Msg
	})
	out := ds[:0]
	for i, d := range ds {
		if i > 0 && d == ds[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// diags collects diagnostics against one file set.
type diags struct {
	fset *token.FileSet
	list Diagnostics
}

func (d *diags) errorf(pos token.Pos, format string, args ...any) {
	d.list = append(d.list, Diagnostic{Pos: d.fset.Position(pos), Msg: fmt.Sprintf(format, args...)})
}
