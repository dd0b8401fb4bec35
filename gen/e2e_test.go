package gen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/gen"
	"github.com/copycat-go/copycat/gen/gentest"
)

// TestEndToEnd generates the counter, embed, embedforeign, shapes and state
// scenarios into a temporary module and runs testdata/e2e_test.go.txt there
// on a copycattest cluster: every generated client method, events, declared
// errors, the dispatch, snapshots and the sessions they hold.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a cluster: skipped with -short")
	}
	if missing, ok := gentest.HasPackages(t, "runtime/client", "runtime/copycattest"); !ok {
		t.Skipf("runtime package %s does not exist yet: cannot run generated code", missing)
	}
	files := map[string]string{}
	for dst, src := range map[string]string{
		"counter/counter.go":          "testdata/counter/counter.go",
		"embed/embed.go":              "testdata/embed/embed.go",
		"shapes/shapes.go":            "testdata/shapes/shapes.go",
		"shapes/log.go":               "testdata/shapes/log.go",
		"state/state.go":              "testdata/state/state.go",
		"state/export.go":             "testdata/state/export.go",
		"embedforeign/base/base.go":   "testdata/embedforeign/base/base.go",
		"embedforeign/outer/outer.go": "testdata/embedforeign/outer/outer.go",
		"e2e/e2e_test.go":             "testdata/e2e_test.go.txt",
	} {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		// The scenarios import each other by their paths in this repository.
		files[dst] = strings.ReplaceAll(string(b), "github.com/copycat-go/copycat/gen/testdata/", "example.com/tmp/")
	}
	files["e2e/doc.go"] = "// Package e2e runs the generated code.\npackage e2e\n"
	dir := gentest.Module(t, files)
	res, err := gen.Generate(gen.Options{Dir: dir, Patterns: []string{"./..."}})
	require.NoError(t, err)
	written, err := res.Write()
	require.NoError(t, err)
	require.Len(t, written, 7)
	for _, p := range written {
		require.FileExists(t, p)
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(rel, ".."), p)
	}
	out, err := gentest.Go(t, dir, "vet", "./...")
	require.NoError(t, err, out)
	out, err = gentest.Go(t, dir, "test", "-count=1", "-race", "./...")
	require.NoError(t, err, out)
	t.Log(out)
}
