// Command copycat runs and drives Copycat clusters: `copycat server` runs a
// member hosting every built-in resource, `copycat demo` shows a cluster
// surviving a leader crash, `copycat cluster` changes and shows membership,
// and `copycat lock|map|election|value|long|queue|set|group` use the
// built-in resources from the shell.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "copycat:", err)
		}
		os.Exit(exitCode(err))
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "copycat",
		Short:         "Copycat: strongly consistent, fault-tolerant resources for Go",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDemo())
	root.AddCommand(newServer())
	root.AddCommand(newClusterCmd())
	root.AddCommand(newBench())
	root.AddCommand(newLogCmd())
	root.AddCommand(shellCommands()...)
	return root
}
