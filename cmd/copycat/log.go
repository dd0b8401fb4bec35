package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/statemachine"
)

func newLogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Look at a member's log on disk",
	}
	cmd.AddCommand(newLogInspect())
	return cmd
}

func newLogInspect() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect --data DIR",
		Short: "Print a stopped member's log: compaction point, segments, entries, live fraction, bytes",
		Long: `Print the operator's view of a member's log: the compaction point and the
state image there, then every segment file with the index range it covers,
how many entries it holds, how many of them are live (entries at or below
the compaction point are live when the image names them; all those above
it are), and its size on disk.

The member must be stopped: its files are locked while it runs (its
/status endpoint shows the same figures live). Opening the log finishes a
write that a crash interrupted, exactly as the member's next start would.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--data is required: the member's data directory")
			}
			u, err := inspectLog(dir)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(u)
			}
			printUsage(cmd.OutOrStdout(), u)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "the member's data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// inspectLog opens the log in dir and reports its usage with the live set
// of its image.
func inspectLog(dir string) (rlog.Usage, error) {
	if _, err := os.Stat(filepath.Join(dir, "stable.db")); err != nil {
		return rlog.Usage{}, fmt.Errorf("%s holds no log (no stable.db): is it a member's data directory?", dir)
	}
	l, err := rlog.Open(rlog.Options{Dir: dir})
	if err != nil {
		return rlog.Usage{}, fmt.Errorf("cannot open the log in %s (a running member holds it locked; stop it first): %w", dir, err)
	}
	defer l.Close()
	snap, err := l.Snapshot()
	if err != nil {
		return rlog.Usage{}, fmt.Errorf("read the compaction point in %s: %w", dir, err)
	}
	info := statemachine.ImageInfo{}
	if snap.Meta.Index > 0 {
		if info, err = statemachine.ReadImageInfo(snap.Data); err != nil {
			return rlog.Usage{}, fmt.Errorf("the state image in %s does not decode: %w", dir, err)
		}
	}
	return l.Usage(func(index uint64) bool { return index > info.Index || info.Contains(index) })
}

func printUsage(w io.Writer, u rlog.Usage) {
	fmt.Fprintf(w, "log %s\n", u.Dir)
	fmt.Fprintf(w, "compaction point %d (term %d); the core's log runs %d..%d\n", u.CompactionIndex, u.CompactionTerm, u.FirstIndex, u.LastIndex)
	if u.Image != "" {
		fmt.Fprintf(w, "image %s, %s\n", filepath.Base(u.Image), size(u.ImageBytes))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "segment\tfirst\tlast\tkind\tentries\tlive\tlive %\tbytes\t")
	for _, s := range u.Segments {
		kind := "plain"
		switch {
		case s.Cleaned:
			kind = "cleaned"
		case !s.Sealed:
			kind = "head"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t\n", filepath.Base(s.File), s.First, s.Last, kind, s.Entries, s.Live, percent(s.Live, s.Entries), size(s.Bytes))
	}
	tw.Flush()
	fmt.Fprintf(w, "total: %d segments, %d entries, %d live (%s), %s on disk (stable.db %s)\n",
		len(u.Segments), u.Entries, u.Live, percent(u.Live, u.Entries), size(u.Bytes), size(u.StableBytes))
}

func percent(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}

func size(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
