/*
 * The environment: what every module below the public context works in.
 *
 * A bg_env is the state root's layout, the loaded configuration, the open
 * store and the host operations (the seam tests replace), with the logger
 * and the flags the context was opened with.  It knows no VM: modules
 * that only need the environment (kernel, image, guest, doctor) take a
 * bg_env, and a public entry point that receives a banger_ctx unwraps it
 * with bg_env_of().
 *
 * struct banger_ctx is defined here, not in ctx/, so that the public
 * entry points of every module can reach their environment without
 * including the layer above them.  Its second member belongs to the vm
 * module and is opaque here.  Only ctx/ makes, reconciles and frees a
 * context (ARCHITECTURE.md, "Module graph").
 */
#ifndef BG_ENV_H
#define BG_ENV_H

#include "../core/core.h"
#include "../core/logger.h"
#include "../config/config.h"
#include "../layout/layout.h"
#include "../store/store.h"
#include "../host/host.h"

typedef struct bg_env {
	bg_logger logger; /* must stay first: see core/logger.h */
	uint32_t flags;   /* BANGER_CTX_* */
	bg_layout layout;
	bg_config config;
	bg_store store;
	/* Where a damaged database was moved by a BANGER_CTX_RECOVER open. */
	char *store_aside;
	/* Privileged operations (the seam unit tests replace). */
	const bg_host_ops *host;
} bg_env;

struct bg_vm_cache; /* vm/handles.c */

struct banger_ctx {
	bg_env env; /* first, so a context logs like its environment */
	/* Handles of this context's VMs (pid, tap, loops, ...), the only
	 * state other threads may touch; owned by the vm module. */
	struct bg_vm_cache *vms;
};

/* NULL for NULL, so entry points can unwrap before checking arguments. */
static inline bg_env *bg_env_of(banger_ctx *ctx)
{
	return ctx ? &ctx->env : NULL;
}

static inline const bg_env *bg_env_of_const(const banger_ctx *ctx)
{
	return ctx ? &ctx->env : NULL;
}

/* Resolve and create the layout, load the configuration and open the
 * store (a damaged store is moved aside when flags ask for recovery).
 * On failure everything made so far is released. */
int bg_env_open(bg_env *env, const banger_ctx_options *opts);
void bg_env_close(bg_env *env);

/* Test seam: replace the host operations (NULL: the real ones). */
void bg_env_set_host_ops(bg_env *env, const bg_host_ops *ops);

#endif
