/*
 * libbanger — the store: recovering a lost, emptied or damaged database.
 *
 * SQLite is banger's index, not the only copy of what it knows.  Every
 * VM, image and kernel directory under the state root carries its own
 * record (vm.json, image.json, kernel.json), stamped with the random id
 * of the store that made it and rewritten atomically whenever the record
 * changes.
 *
 * Opening a context never deletes or kills anything.  When the database
 * has no records while directories made by another store (or with no
 * record at all, for VMs) exist, banger_ctx_open() fails with
 * BANGER_ESTORE and changes nothing; so does a database SQLite reports
 * damaged.  Open with BANGER_CTX_RECOVER and call banger_store_recover()
 * to rebuild the records from the directories.
 */
#ifndef BANGER_STORE_H
#define BANGER_STORE_H

#include "common.h"
#include "context.h"
#include "progress.h"

BANGER_BEGIN_DECL

#define BANGER_STORE_RECOVER_OPTIONS_VERSION 1

/* Report what would be recovered; change nothing. */
#define BANGER_STORE_RECOVER_DRY_RUN (1u << 0)

typedef struct {
	unsigned int version;    /* BANGER_STORE_RECOVER_OPTIONS_VERSION */
	uint32_t flags;          /* BANGER_STORE_RECOVER_* */
	/* BANGER_PROGRESS_OP_STORE_RECOVER reports (progress.h): a STEP for
	 * every record recovered and every directory or finding reported,
	 * then those of the reconcile that follows; NULL: none.  A non-zero
	 * answer stops the recovery before the next record. */
	banger_progress_cb progress;
	void *progress_payload;
} banger_store_recover_options;

#define BANGER_STORE_RECOVER_OPTIONS_INIT { BANGER_STORE_RECOVER_OPTIONS_VERSION, 0, NULL, NULL }

BANGER_EXTERN(int) banger_store_recover_options_init(banger_store_recover_options *opts,
						     unsigned int version);

/* Add a row for every kernel, image and VM directory whose record the
 * store lacks, kernels first, then images, then VMs (whose paths are
 * recomputed from the state root).  An emptied store first takes the id
 * most records carry, so the directories stay its own.  A directory
 * that cannot be recovered (no record, a record that does not parse, a
 * name or address another record holds) is reported and left in place.
 * Afterwards the recovered VMs are reconciled as after a crash: a VM
 * whose VMM is gone is stopped, a VM whose VMM still runs stays running
 * (its host key pins are still in banger's known_hosts).
 *
 * The context should be opened with BANGER_CTX_RECOVER: a damaged
 * database is then moved aside (kept as <db>.damaged-<time>, never
 * deleted) and a new one made, which the first report names.
 *
 * Returns the number of records recovered (>= 0) or a negative error.
 * A cancel returns BANGER_ECANCELLED between two records (or two objects
 * of the reconcile); the records added before it stay, and a second
 * recovery adds the rest.  opts may be NULL. */
BANGER_EXTERN(int) banger_store_recover(banger_ctx *ctx, const banger_store_recover_options *opts);

BANGER_END_DECL

#endif
