/* banger_ctx, the top of the library: an environment (env/), the VM
 * handle cache (vm/), the lost-store check and reconcile-on-open. */
#include "../env/env.h"
#include "../vm/vm.h"

BANGER_EXTERN(int) banger_ctx_options_init(banger_ctx_options *opts, unsigned int version)
{
	static const banger_ctx_options def = BANGER_CTX_OPTIONS_INIT;
	return bg_options_init(opts, &def, sizeof(def), "banger_ctx_options", version, BANGER_CTX_OPTIONS_VERSION,
			       BANGER_CTX_OPTIONS_VERSION);
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
	if ((rc = bg_env_open(&ctx->env, opts))) {
		bg_free(ctx);
		return rc;
	}
	if (!(ctx->vms = bg_vm_cache_new())) {
		rc = bg_error_oom();
		goto fail;
	}
	/* An empty store while the state root holds another store's
	 * directories is a lost database: refuse to work over it. */
	if (!(opts->flags & BANGER_CTX_RECOVER) && (rc = bg_store_check_not_lost(ctx)))
		goto fail;
	bg_debug(ctx, "opened state %s (store %.12s)", ctx->env.layout.state_dir, ctx->env.store.id);
	if (!(opts->flags & (BANGER_CTX_NO_RECONCILE | BANGER_CTX_RECOVER))) {
		unsigned fixed = 0;
		/* A failure here must not lock the user out of their state:
		 * report it and go on; `banger vm reconcile` retries. */
		if (bg_vm_reconcile(ctx, BG_RECONCILE_OPEN, NULL, &fixed) != 0)
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
	bg_vm_cache_free(ctx->vms);
	bg_env_close(&ctx->env);
	bg_free(ctx);
}

BANGER_EXTERN(const char *) banger_ctx_state_dir(const banger_ctx *ctx)
{
	return ctx ? ctx->env.layout.state_dir : NULL;
}

BANGER_EXTERN(const char *) banger_ctx_config_path(const banger_ctx *ctx)
{
	return ctx ? ctx->env.layout.config_path : NULL;
}

BANGER_EXTERN(int) banger_ctx_config_get(char **out, banger_ctx *ctx, const char *key)
{
	if (!out || !ctx || !key)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	const char *v = bg_config_get(&ctx->env.config, key);
	if (!v)
		return bg_error(BANGER_ENOTFOUND, "unknown configuration key '%s'", key);
	*out = bg_strdup(v);
	return *out ? 0 : bg_error_oom();
}
