package log

// failpoint, when set (by tests only), is called at named steps of the
// multi-file operations; a non-nil error aborts the operation there as a crash
// would, leaving the files as they are. Names:
//
//	roll.before-rename      new segment written under its temporary name
//	roll.after-rename       new segment renamed, not yet in use
//	truncate.remove         before deleting each segment above the truncation point
//	truncate.delete-range   before deleting the suffix inside the segment that keeps a prefix
//	append.store            before the batch's StoreLogs transaction
//	save.hardstate          entries durable, hard state not yet written
//	compact.meta            before the compaction point is written
//	compact.remove          before deleting each segment dropped by a compaction
var failpoint func(name string) error

func fail(name string) error {
	if failpoint == nil || name == "" {
		return nil
	}
	return failpoint(name)
}
