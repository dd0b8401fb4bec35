// Command copycatgen generates the code of Copycat replicated resources:
// operation codes, wire structs with msgpack methods, server dispatch,
// snapshots, the resource type descriptor and typed client proxies. It is
// meant for go generate:
//
//	//go:generate go run github.com/copycat-go/copycat/cmd/copycatgen
//
// Run copycatgen -h for the markers it reads; the gen package documents
// the generated code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/copycat-go/copycat/gen"
)

func main() {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "copycatgen:", err)
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], wd, os.Stdout, os.Stderr))
}

const usage = `usage: copycatgen [-check] [packages]
       copycatgen new NAME

copycatgen reads the packages (default: the one in the current directory)
and writes, beside each source file declaring a resource, FILE_copycat.go:
operation codes, one struct per command and query (and per result) with
msgpack methods, the server dispatch, hooks and snapshots, the descriptor
NameType for servers, and the typed client (OpenName, one method per
operation, OnEvent listeners). It writes only files that change and removes
generated files no longer needed. Problems are reported all at once, as
file:line:col: message, with exit status 1.

Markers are Go directives (no space after //) in doc comments:

  //copycat:resource [name=TYPENAME] [compaction=snapshot|release]
      on a struct type: a replicated resource. name defaults to
      "<import path>.<Type>"; compaction defaults to snapshot (the
      generated snapshot writes every field, exported or not, except
      runtime handles, funcs and chans), or release if it embeds a
      release-mode resource.
  //copycat:command [code=N]
      on a method with a pointer receiver: an operation that goes through
      the log and changes state.
  //copycat:query [code=N] [consistency=linearizable|lease|sequential]
      on a method: a read; linearizable by default. A query may take a
      runtime.Commit (for Time, Index, Session) but must not Release it.
  //copycat:event [code=N]
      on a struct type: an event resources publish; clients get OnName.
  //copycat:error [code=N]
      on a package-level error variable: it keeps its identity across the
      wire, so errors.Is works on the client.

Operations take an optional first runtime.Commit, then named parameters of
msgpack-encodable types; they return (), (T), (error) or (T, error).
Embedding a resource brings in its operations, events, errors and hooks
(the outer struct's own methods win). Hooks a resource may have:
Init(runtime.Context), SessionOpened(runtime.Session),
SessionClosed(runtime.Session, bool), Delete(), and Snapshot(io.Writer)
error with Restore(io.Reader) error to replace the generated snapshot.

Codes: an operation, event or error is numbered by a hash of its name
(FNV-1a folded to 16 bits), so adding one never renumbers the others; the
generator reports collisions, which code=N resolves.

Example:

  //go:generate go run github.com/copycat-go/copycat/cmd/copycatgen

  // Counter is a replicated counter.
  //
  //copycat:resource
  type Counter struct{ value int64 }

  //copycat:command
  func (c *Counter) Add(delta int64) int64 { c.value += delta; return c.value }

  //copycat:query consistency=sequential
  func (c *Counter) Get() int64 { return c.value }

gives CounterType, OpenCounter(ctx, client, name) and
(*CounterClient).Add(ctx, delta) / Get(ctx, opts...).

copycatgen new NAME writes NAME/NAME.go (a resource to edit), NAME/NAME_test.go
(a test on an in-memory cluster) and NAME/cmd/NAME-server/main.go (a server),
then generates NAME's code.

Flags:
`

// run is the command: it returns the exit status (0 done, 1 problems in
// the source or stale files, 2 usage or I/O errors).
func run(args []string, dir string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "new" {
		return runNew(args[1:], dir, stdout, stderr)
	}
	fs := flag.NewFlagSet("copycatgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("check", false, "report generated files that are stale or missing, without writing; exit status 1 if any")
	verbose := fs.Bool("v", false, "list the files written and removed")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	res, err := gen.Generate(gen.Options{Dir: dir, Patterns: fs.Args()})
	if err != nil {
		var ds gen.Diagnostics
		if errors.As(err, &ds) {
			fmt.Fprintln(stderr, relativize(ds.Error(), dir))
			return 1
		}
		fmt.Fprintln(stderr, "copycatgen:", err)
		return 2
	}
	if *check {
		write, remove, err := res.Changes()
		if err != nil {
			fmt.Fprintln(stderr, "copycatgen:", err)
			return 2
		}
		for _, p := range write {
			fmt.Fprintf(stderr, "%s: stale or missing: run go generate\n", rel(dir, p))
		}
		for _, p := range remove {
			fmt.Fprintf(stderr, "%s: no longer generated: run go generate to remove it\n", rel(dir, p))
		}
		if len(write)+len(remove) > 0 {
			return 1
		}
		return 0
	}
	touched, err := res.Write()
	if err != nil {
		fmt.Fprintln(stderr, "copycatgen:", err)
		return 2
	}
	if *verbose {
		for _, p := range touched {
			fmt.Fprintln(stdout, rel(dir, p))
		}
	}
	return 0
}

func rel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// relativize shortens absolute paths under dir in diagnostics.
func relativize(s, dir string) string {
	return strings.ReplaceAll(s, dir+string(filepath.Separator), "")
}
