/*
 * libbanger — the context: one open state root.
 *
 * A context owns one SQLite connection and an in-memory handle cache.
 * It is used by one thread at a time; different contexts (in one process
 * or several) may be used concurrently on the same state root.
 */
#ifndef BANGER_CONTEXT_H
#define BANGER_CONTEXT_H

#include "common.h"

BANGER_BEGIN_DECL

typedef struct banger_ctx banger_ctx;

typedef enum {
	BANGER_LOG_ERROR = 0,
	BANGER_LOG_WARN = 1,
	BANGER_LOG_INFO = 2,
	BANGER_LOG_DEBUG = 3
} banger_log_level;

/* Called for every log record at or below the configured level.  The
 * library never writes to stdout or stderr itself. */
typedef void (*banger_log_cb)(int level, const char *message, void *payload);

#define BANGER_CTX_OPTIONS_VERSION 1

/* Do not reconcile VMs when opening (tools that only read). */
#define BANGER_CTX_NO_RECONCILE (1u << 0)
/* Open for banger_store_recover(): do not refuse an emptied store, and
 * move a damaged database aside (kept, never deleted) and start a new
 * one.  Implies BANGER_CTX_NO_RECONCILE. */
#define BANGER_CTX_RECOVER (1u << 1)

typedef struct {
	unsigned int version;   /* BANGER_CTX_OPTIONS_VERSION */
	const char *state_dir;  /* NULL: $BANGER_HOME, $XDG_STATE_HOME/banger, ~/.local/state/banger */
	const char *config_path;/* NULL: $XDG_CONFIG_HOME/banger/config */
	banger_log_cb log_cb;   /* NULL: logs are dropped */
	void *log_payload;
	int log_level;          /* a banger_log_level; default BANGER_LOG_WARN */
	uint32_t flags;         /* BANGER_CTX_* */
} banger_ctx_options;

#define BANGER_CTX_OPTIONS_INIT { BANGER_CTX_OPTIONS_VERSION, NULL, NULL, NULL, NULL, BANGER_LOG_WARN, 0 }

/* Initialise options to defaults for the given version. */
BANGER_EXTERN(int) banger_ctx_options_init(banger_ctx_options *opts, unsigned int version);

/* Open a context: creates the state layout with safe modes, opens the
 * store and runs migrations, then (unless BANGER_CTX_NO_RECONCILE)
 * settles recorded VMs whose VMM is gone (marked stopped, their taps,
 * loops and NAT rules released).  Opening never deletes a file or kills
 * a process; finishing interrupted creates and deletes and removing
 * orphans is banger_vm_reconcile()'s job.
 *
 * Fails with BANGER_ESTORE, changing nothing, when the database is
 * damaged, or has no records while the state root holds directories
 * another store made: see <banger/store.h>.  opts may be NULL. */
BANGER_EXTERN(int) banger_ctx_open(banger_ctx **out, const banger_ctx_options *opts);

/* Close a context.  Accepts NULL. */
BANGER_EXTERN(void) banger_ctx_close(banger_ctx *ctx);

/* Resolved paths, owned by the context (valid until close). */
BANGER_EXTERN(const char *) banger_ctx_state_dir(const banger_ctx *ctx);
BANGER_EXTERN(const char *) banger_ctx_config_path(const banger_ctx *ctx);

/* Look up a configuration value ("vmm", "subnet", ...) after defaults and
 * the config file are applied.  *out is a copy to free with banger_free(). */
BANGER_EXTERN(int) banger_ctx_config_get(char **out, banger_ctx *ctx, const char *key);

BANGER_END_DECL

#endif
