/* The environment: layout (resolved and created safely), configuration,
 * store (migrations run there), host operations. */
#include "env.h"

#include <errno.h>
#include <stdio.h>

/* Keep a damaged database (and its -wal and -shm) under a new name. */
static int move_aside(bg_env *env)
{
	/* a name no earlier recovery used: kept means never overwritten */
	char *aside = NULL;
	for (int n = 0; n < 1000; n++) {
		bg_free(aside);
		aside = n ? bg_sprintf("%s.damaged-%lld-%d", env->layout.db_path, (long long)bg_wall_seconds(), n)
			  : bg_sprintf("%s.damaged-%lld", env->layout.db_path, (long long)bg_wall_seconds());
		if (!aside)
			return bg_error_oom();
		if (!bg_path_exists(aside))
			break;
	}
	int rc = 0;
	const char *sides[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(sides) && !rc; i++) {
		char *from = bg_sprintf("%s%s", env->layout.db_path, sides[i]);
		char *to = bg_sprintf("%s%s", aside, sides[i]);
		if (!from || !to)
			rc = bg_error_oom();
		else if (rename(from, to) != 0 && errno != ENOENT)
			rc = bg_error_os(BANGER_EIO, errno, "move %s aside", from);
		bg_free(from);
		bg_free(to);
	}
	if (rc == 0) {
		bg_warn(env, "the damaged database was kept as %s; a new one is made", aside);
		env->store_aside = aside;
	} else {
		bg_free(aside);
	}
	return rc;
}

/* Open the store.  A damaged one fails with BANGER_ESTORE; opened for
 * recovery, it is moved aside and a new one made. */
static int open_store(bg_env *env)
{
	bool recover = (env->flags & BANGER_CTX_RECOVER) != 0;
	int rc = bg_store_open(&env->store, env->layout.db_path, env);
	if (rc == 0 && recover && bg_store_quick_check(&env->store) == BANGER_ESTORE) {
		bg_store_close(&env->store);
		rc = BANGER_ESTORE;
	}
	if (rc == BANGER_ESTORE && recover) {
		banger_error_clear();
		if ((rc = move_aside(env)) == 0)
			rc = bg_store_open(&env->store, env->layout.db_path, env);
	}
	return rc;
}

int bg_env_open(bg_env *env, const banger_ctx_options *opts)
{
	int rc;
	env->logger.cb = opts->log_cb;
	env->logger.payload = opts->log_payload;
	env->logger.level = opts->log_level;
	env->flags = opts->flags;
	env->host = bg_host_ops_real();
	if ((rc = bg_layout_resolve(&env->layout, opts->state_dir, opts->config_path)) ||
	    (rc = bg_layout_ensure(&env->layout)) ||
	    /* a file named with --config (config_path) must exist; the default may be absent */
	    (rc = bg_config_load(&env->config, env->layout.config_path, opts->config_path && *opts->config_path)) ||
	    (rc = open_store(env))) {
		bg_env_close(env);
		return rc;
	}
	return 0;
}

void bg_env_close(bg_env *env)
{
	bg_store_close(&env->store);
	bg_free(env->store_aside);
	env->store_aside = NULL;
	bg_config_free(&env->config);
	bg_layout_free(&env->layout);
}

void bg_env_set_host_ops(bg_env *env, const bg_host_ops *ops)
{
	env->host = ops ? ops : bg_host_ops_real();
}
