/*
 * Private declarations of the context: what an open banger_ctx holds.
 */
#ifndef BG_CTX_H
#define BG_CTX_H

#include "../core/core.h"
#include "../core/logger.h"
#include "../config/config.h"
#include "../layout/layout.h"
#include "../store/store.h"
#include "../host/host.h"

#include <pthread.h>

/* What is currently true about a VM: kernel handles, never stored in
 * SQLite.  Cached here and in <vm dir>/handles.json. */
typedef struct {
	pid_t pid;              /* VMM process, 0 when none */
	char tap[16];           /* tap device, "" when none */
	char base_loop[32];     /* read-only loop over the image (dm only) */
	char cow_loop[32];      /* loop over the COW file (dm only) */
	char dm_name[64];       /* dm-snapshot target name */
	char dm_dev[96];        /* /dev/mapper/<dm_name> */
	char overlay[16];       /* "dm-snapshot", "reflink", "copy" or "" */
	bool nat;               /* NAT rules installed */
} bg_vm_handles;

typedef struct {
	char id[9];
	bg_vm_handles h;
} bg_handles_entry;

struct banger_ctx {
	bg_logger logger; /* must stay first: see core/logger.h */
	uint32_t flags;
	bg_layout layout;
	bg_config config;
	bg_store store;
	/* Where a damaged database was moved by a BANGER_CTX_RECOVER open. */
	char *store_aside;
	/* Privileged operations (the seam unit tests replace). */
	const bg_host_ops *host;
	/* Handle cache: guarded by handles_mu, the only state of a context
	 * that other threads may touch (reconcile workers, stats). */
	pthread_mutex_t handles_mu;
	bg_handles_entry *handles;
	size_t handles_count;
};

/* Test seam: replace the host operations of a context. */
void bg_ctx_set_host_ops(struct banger_ctx *ctx, const bg_host_ops *ops);

#endif
