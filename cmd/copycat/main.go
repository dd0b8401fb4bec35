// Command copycat runs and drives Copycat clusters: `copycat server` runs a
// member hosting every built-in resource, `copycat demo` shows a cluster
// surviving a leader crash. Operator commands and the built-ins from the
// shell are being built.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "copycat:", err)
		os.Exit(1)
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
	return root
}
