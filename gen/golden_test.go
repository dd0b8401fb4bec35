package gen_test

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/gen"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// errorsGolden holds the expected diagnostics of a scenario that fails.
const errorsGolden = "errors.golden"

// repoRoot is the module root (gen's parent).
func repoRoot(t testing.TB) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Dir(wd)
}

// scenarios lists the directories under testdata.
func scenarios(t *testing.T) []string {
	entries, err := os.ReadDir("testdata")
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestGolden generates every scenario under testdata and compares the
// output with the files beside the input (a scenario that succeeds) or
// with errors.golden (one that must fail). -update rewrites them.
func TestGolden(t *testing.T) {
	for _, name := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			dir, err := filepath.Abs(filepath.Join("testdata", name))
			require.NoError(t, err)
			res, err := gen.Generate(gen.Options{Dir: dir, Patterns: []string{"./..."}})
			wantErrPath := filepath.Join(dir, errorsGolden)
			_, statErr := os.Stat(wantErrPath)
			expectFail := statErr == nil
			if err != nil {
				var ds gen.Diagnostics
				require.True(t, errors.As(err, &ds), "not diagnostics: %v", err)
				got := strings.ReplaceAll(ds.Error(), dir+string(filepath.Separator), "") + "\n"
				if *update {
					require.NoError(t, os.WriteFile(wantErrPath, []byte(got), 0o644))
					return
				}
				require.True(t, expectFail, "unexpected diagnostics:\n%s", got)
				want, err := os.ReadFile(wantErrPath)
				require.NoError(t, err)
				assert.Equal(t, string(want), got)
				return
			}
			require.False(t, expectFail && !*update, "expected diagnostics (see %s), generation succeeded", errorsGolden)
			if *update {
				_, err := res.Write()
				require.NoError(t, err)
				if expectFail {
					os.Remove(wantErrPath)
				}
			}
			write, remove, err := res.Changes()
			require.NoError(t, err)
			assert.Empty(t, write, "generated files differ from the golden ones (go test ./gen -update)")
			assert.Empty(t, remove, "stale generated files")
			require.NotEmpty(t, res.Files)
			for path, data := range res.Files {
				assert.True(t, strings.HasPrefix(string(data), gen.Header+"\n"), "%s: header", path)
				assert.Contains(t, string(data), "//go:build !copycatgen\n", "%s: build constraint", path)
			}
		})
	}
}

// TestGoldenCompiles builds and vets every successful scenario's output
// with its input.
func TestGoldenCompiles(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "runtime", "client")); err != nil {
		t.Skip("runtime/client does not exist yet: generated code cannot compile")
	}
	if testing.Short() {
		t.Skip("compiles packages: skipped with -short")
	}
	var pkgs []string
	for _, name := range scenarios(t) {
		if _, err := os.Stat(filepath.Join("testdata", name, errorsGolden)); err == nil {
			continue
		}
		pkgs = append(pkgs, "./gen/testdata/"+name+"/...")
	}
	sort.Strings(pkgs)
	cmd := exec.Command("go", append([]string{"vet"}, pkgs...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go vet %s:\n%s", strings.Join(pkgs, " "), out)
}
