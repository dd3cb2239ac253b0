/* banger_ctx: resolve the layout, create it safely, load the config,
 * open the store (migrations run there). */
#include "ctx.h"
#include "../vm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

BANGER_EXTERN(int) banger_ctx_options_init(banger_ctx_options *opts, unsigned int version)
{
	static const banger_ctx_options def = BANGER_CTX_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_ctx_options", version, BANGER_CTX_OPTIONS_VERSION,
			       BANGER_CTX_OPTIONS_VERSION);
}

/* Keep a damaged database (and its -wal and -shm) under a new name. */
static int move_aside(banger_ctx *ctx)
{
	/* a name no earlier recovery used: kept means never overwritten */
	char *aside = NULL;
	for (int n = 0; n < 1000; n++) {
		bg_free(aside);
		aside = n ? bg_sprintf("%s.damaged-%lld-%d", ctx->layout.db_path, (long long)bg_wall_seconds(), n)
			  : bg_sprintf("%s.damaged-%lld", ctx->layout.db_path, (long long)bg_wall_seconds());
		if (!aside)
			return bg_error_oom();
		if (!bg_path_exists(aside))
			break;
	}
	int rc = 0;
	const char *sides[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(sides) && !rc; i++) {
		char *from = bg_sprintf("%s%s", ctx->layout.db_path, sides[i]);
		char *to = bg_sprintf("%s%s", aside, sides[i]);
		if (!from || !to)
			rc = bg_error_oom();
		else if (rename(from, to) != 0 && errno != ENOENT)
			rc = bg_error_os(BANGER_EIO, errno, "move %s aside", from);
		bg_free(from);
		bg_free(to);
	}
	if (rc == 0) {
		bg_warn(ctx, "the damaged database was kept as %s; a new one is made", aside);
		ctx->store_aside = aside;
	} else {
		bg_free(aside);
	}
	return rc;
}

/* Open the store.  A damaged one, or an empty one while the state root
 * holds another store's directories, fails with BANGER_ESTORE; opened
 * for recovery, the damaged one is moved aside and a new one made. */
static int open_store(banger_ctx *ctx)
{
	bool recover = (ctx->flags & BANGER_CTX_RECOVER) != 0;
	int rc = bg_store_open(&ctx->store, ctx->layout.db_path, ctx);
	if (rc == 0 && recover && bg_store_quick_check(&ctx->store) == BANGER_ESTORE) {
		bg_store_close(&ctx->store);
		rc = BANGER_ESTORE;
	}
	if (rc == BANGER_ESTORE && recover) {
		banger_error_clear();
		if ((rc = move_aside(ctx)) == 0)
			rc = bg_store_open(&ctx->store, ctx->layout.db_path, ctx);
	}
	if (rc == 0 && !recover && (rc = bg_store_check_not_lost(ctx)))
		bg_store_close(&ctx->store);
	return rc;
}

BANGER_EXTERN(int) banger_ctx_open(banger_ctx **out, const banger_ctx_options *opts)
{
	banger_ctx_options def = BANGER_CTX_OPTIONS_INIT;
	int rc;

	if (!out)
		return bg_error(BANGER_EINVALID, "out must not be NULL");
	*out = NULL;
	if ((rc = BG_OPTIONS_CHECK(opts, &def, banger_ctx_options, BANGER_CTX_OPTIONS_VERSION,
				   BANGER_CTX_OPTIONS_VERSION)))
		return rc;
	if ((rc = bg_global_init()))
		return rc;

	banger_ctx *ctx = bg_calloc(1, sizeof(*ctx));
	if (!ctx)
		return bg_error_oom();
	ctx->logger.cb = opts->log_cb;
	ctx->logger.payload = opts->log_payload;
	ctx->logger.level = opts->log_level;
	ctx->flags = opts->flags;
	ctx->host = bg_host_ops_real();
	pthread_mutex_init(&ctx->handles_mu, NULL);

	if ((rc = bg_layout_resolve(&ctx->layout, opts->state_dir, opts->config_path)))
		goto fail;
	if ((rc = bg_layout_ensure(&ctx->layout)))
		goto fail;
	/* a file named with --config (config_path) must exist; the default may be absent */
	if ((rc = bg_config_load(&ctx->config, ctx->layout.config_path, opts->config_path && *opts->config_path)))
		goto fail;
	if ((rc = open_store(ctx)))
		goto fail;
	bg_debug(ctx, "opened state %s (store %.12s)", ctx->layout.state_dir, ctx->store.id);
	if (!(ctx->flags & (BANGER_CTX_NO_RECONCILE | BANGER_CTX_RECOVER))) {
		unsigned fixed = 0;
		/* A failure here must not lock the user out of their state:
		 * report it and go on; `banger vm reconcile` retries. */
		if (bg_vm_reconcile(ctx, BG_RECONCILE_OPEN, NULL, NULL, &fixed) != 0)
			bg_warn(ctx, "reconcile: %s", banger_error_last()->message);
		else if (fixed)
			bg_info(ctx, "reconcile: %u VM(s) brought in line with the host", fixed);
		banger_error_clear();
	}
	*out = ctx;
	return 0;
fail:
	banger_ctx_close(ctx);
	return rc;
}

BANGER_EXTERN(void) banger_ctx_close(banger_ctx *ctx)
{
	if (!ctx)
		return;
	bg_store_close(&ctx->store);
	bg_free(ctx->store_aside);
	pthread_mutex_destroy(&ctx->handles_mu);
	bg_free(ctx->handles);
	bg_config_free(&ctx->config);
	bg_layout_free(&ctx->layout);
	bg_free(ctx);
}

void bg_ctx_set_host_ops(banger_ctx *ctx, const bg_host_ops *ops)
{
	ctx->host = ops ? ops : bg_host_ops_real();
}

BANGER_EXTERN(const char *) banger_ctx_state_dir(const banger_ctx *ctx)
{
	return ctx ? ctx->layout.state_dir : NULL;
}

BANGER_EXTERN(const char *) banger_ctx_known_hosts_path(const banger_ctx *ctx)
{
	return ctx ? ctx->layout.known_hosts : NULL;
}

BANGER_EXTERN(const char *) banger_ctx_config_path(const banger_ctx *ctx)
{
	return ctx ? ctx->layout.config_path : NULL;
}

BANGER_EXTERN(int) banger_ctx_config_get(char **out, banger_ctx *ctx, const char *key)
{
	if (!out || !ctx || !key)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	const char *v = bg_config_get(&ctx->config, key);
	if (!v)
		return bg_error(BANGER_ENOTFOUND, "unknown configuration key '%s'", key);
	*out = bg_strdup(v);
	return *out ? 0 : bg_error_oom();
}
