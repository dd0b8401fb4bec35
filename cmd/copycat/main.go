// Command copycat runs and drives Copycat clusters. Today it has one
// subcommand, demo; the server daemon, the operator commands and the
// built-ins from the shell are being built.
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
	return root
}
