package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/gen"
	"github.com/copycat-go/copycat/gen/gentest"
)

const counterSrc = `package counter

// Counter counts.
//
//copycat:resource
type Counter struct{ value int64 }

// Add adds.
//
//copycat:command
func (c *Counter) Add(delta int64) int64 { c.value += delta; return c.value }
`

func runCmd(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, dir, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	code, _, stderr := runCmd(t, t.TempDir(), "-h")
	assert.Equal(t, 0, code)
	for _, want := range []string{"//copycat:resource", "//copycat:command", "//copycat:query", "//copycat:event", "//copycat:error", "code=N", "FNV-1a", "-check", "copycatgen new NAME", "Example"} {
		assert.Contains(t, stderr, want)
	}
	code, _, _ = runCmd(t, t.TempDir(), "-nope")
	assert.Equal(t, 2, code, "an unknown flag is a usage error")
}

func TestGenerateCheckAndStale(t *testing.T) {
	dir := gentest.Module(t, map[string]string{"counter/counter.go": counterSrc})
	pkg := filepath.Join(dir, "counter")
	out := filepath.Join(pkg, "counter_copycat.go")

	code, _, stderr := runCmd(t, pkg, "-check")
	assert.Equal(t, 1, code, "missing output is stale")
	assert.Contains(t, stderr, "counter_copycat.go: stale or missing")
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "-check writes nothing")

	code, stdout, stderr := runCmd(t, pkg, "-v")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "counter_copycat.go\n", stdout)
	first, err := os.ReadFile(out)
	require.NoError(t, err)
	info1, _ := os.Stat(out)

	code, stdout, _ = runCmd(t, pkg, "-v")
	assert.Equal(t, 0, code)
	assert.Empty(t, stdout, "a second run changes nothing")
	second, _ := os.ReadFile(out)
	assert.Equal(t, first, second)
	info2, _ := os.Stat(out)
	assert.Equal(t, info1.ModTime(), info2.ModTime(), "unchanged files are not rewritten")
	code, _, _ = runCmd(t, pkg, "-check")
	assert.Equal(t, 0, code)

	// From the module root with a pattern.
	code, _, stderr = runCmd(t, dir, "-check", "./...")
	assert.Equal(t, 0, code, stderr)

	// An edited generated file is stale.
	require.NoError(t, os.WriteFile(out, append(first, "// edited\n"...), 0o644))
	code, _, _ = runCmd(t, pkg, "-check")
	assert.Equal(t, 1, code)

	// Generated files no longer needed are removed; other files are not.
	stale := filepath.Join(pkg, "old_copycat.go")
	require.NoError(t, os.WriteFile(stale, []byte(gen.Header+"\n\n//go:build !copycatgen\n\npackage counter\n\nfunc broken( {\n"), 0o644))
	foreign := filepath.Join(pkg, "mine_copycat.go")
	require.NoError(t, os.WriteFile(foreign, []byte("package counter\n"), 0o644))
	code, _, stderr = runCmd(t, pkg, "-check")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "old_copycat.go: no longer generated")
	assert.NotContains(t, stderr, "mine_copycat.go")
	code, _, stderr = runCmd(t, pkg)
	require.Equal(t, 0, code, "a broken generated file does not stop loading: %s", stderr)
	_, err = os.Stat(stale)
	assert.True(t, os.IsNotExist(err), "stale generated file removed")
	_, err = os.Stat(foreign)
	assert.NoError(t, err, "a file without the header is not ours")
	got, _ := os.ReadFile(out)
	assert.Equal(t, first, got, "edited file regenerated")

	// Removing the marker removes the output.
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "counter.go"), []byte(strings.ReplaceAll(counterSrc, "//copycat:", "// ")), 0o644))
	code, _, stderr = runCmd(t, pkg)
	require.Equal(t, 0, code, stderr)
	_, err = os.Stat(out)
	assert.True(t, os.IsNotExist(err))
}

func TestDiagnosticsExitStatus(t *testing.T) {
	src := strings.Replace(counterSrc, "//copycat:command", "//copycat:command bogus=1", 1)
	src = strings.Replace(src, "func (c *Counter) Add(delta int64) int64", "func (c Counter) Add(delta int64) int64", 1)
	dir := gentest.Module(t, map[string]string{"counter/counter.go": src})
	code, _, stderr := runCmd(t, filepath.Join(dir, "counter"))
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Len(t, lines, 2, "every problem at once:\n%s", stderr)
	assert.True(t, strings.HasPrefix(lines[0], "counter.go:10:1: unknown argument \"bogus\""), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "counter.go:11:18: operation Add has a value receiver"), lines[1])

	code, _, _ = runCmd(t, dir, "./nosuchpkg")
	assert.NotEqual(t, 0, code)
}

func TestNew(t *testing.T) {
	dir := gentest.Module(t, nil)
	code, stdout, stderr := runCmd(t, dir, "new", "widget")
	require.Equal(t, 0, code, stderr)
	for _, f := range []string{"widget/widget.go", "widget/widget_test.go", "widget/cmd/widget-server/main.go", "widget/widget_copycat.go"} {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f)))
		assert.NoError(t, err, f)
		assert.Contains(t, stdout, filepath.FromSlash(f))
	}
	src, _ := os.ReadFile(filepath.Join(dir, "widget", "widget.go"))
	assert.Contains(t, string(src), "type Widget struct")
	assert.Contains(t, string(src), "//go:generate go run github.com/copycat-go/copycat/cmd/copycatgen")
	test, _ := os.ReadFile(filepath.Join(dir, "widget", "widget_test.go"))
	assert.Contains(t, string(test), `"example.com/tmp/widget"`)

	code, _, stderr = runCmd(t, dir, "new", "widget")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "exists")
	code, _, _ = runCmd(t, dir, "new", "Bad-Name")
	assert.Equal(t, 2, code)
	code, _, _ = runCmd(t, dir, "new")
	assert.Equal(t, 2, code)
	code, _, _ = runCmd(t, t.TempDir(), "new", "x")
	assert.Equal(t, 2, code, "outside a module")

	if testing.Short() {
		t.Skip("building and running the scaffold: skipped with -short")
	}
	if missing, ok := gentest.HasPackages(t, "runtime/client", "runtime/copycattest"); !ok {
		t.Skipf("runtime package %s does not exist yet: cannot run the scaffold's test", missing)
	}
	out, err := gentest.Go(t, dir, "vet", "./widget")
	require.NoError(t, err, out)
	out, err = gentest.Go(t, dir, "test", "-count=1", "./widget")
	require.NoError(t, err, out)
	if _, ok := gentest.HasPackages(t, "runtime/server"); ok {
		out, err = gentest.Go(t, dir, "build", "-o", os.DevNull, "./widget/cmd/widget-server")
		require.NoError(t, err, out)
	}
}
