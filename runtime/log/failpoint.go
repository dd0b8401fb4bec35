package log

// failpoint, when set (by tests only), is called at named steps of the
// multi-file operations; a non-nil error aborts the operation there as a crash
// would, leaving the files as they are. Names:
//
//	roll.before-rename      new segment written under its temporary name
//	roll.after-rename       new segment renamed, not yet in use
//	truncate.remove         before deleting each segment above the truncation point
//	truncate.delete-range   before deleting the suffix inside the segment that keeps a prefix
//	seal.sync               before a head's bolt file is synced, as it is sealed
//	seal.remove-journal     a sealed head's bolt file synced, its journal not yet removed
//	journal.before-rename   a new head's journal written under its temporary name
//	journal.append          before the batch's journal record is written
//	save.hardstate          entries durable, hard state not yet written
//	compact.meta            before the compaction point is written (Compact, SetCompaction)
//	compact.remove          before deleting each segment dropped by SetCompaction
//	compact.remove-image    before deleting the previous image
//	image.before-rename     new image written under its temporary name
//	image.after-rename      new image renamed, not yet referenced
//	install.stage           before creating each staged segment
//	install.commit          staged segments and image durable, record not yet written
//	install.remove          before deleting each old segment or image (phase 1)
//	install.phase2          before recording phase 2
//	install.promote         before renaming each staged segment into place (phase 2)
//	install.done            before recording the install done
//	clean.before-rename     cleaned segment written under its temporary name
//	clean.after-rename      cleaned segment renamed over the first it replaces, not yet in use
//	clean.remove            before deleting each other segment a merge replaces (also in Open)
var failpoint func(name string) error

// flushHook, when set (by tests only), is called by the flusher before it
// writes a batch; it may block to hold the flush in progress.
var flushHook func()

// flushWaitHook, when set (by tests only), is called each time a caller
// holding Log.mu starts waiting for the flusher.
var flushWaitHook func()

func fail(name string) error {
	if failpoint == nil || name == "" {
		return nil
	}
	return failpoint(name)
}
