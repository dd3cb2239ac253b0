/* A banger context over a fresh temporary directory, for unit tests that
 * drive the library through a context: no reconcile on open, runtime
 * files and the blob cache inside the directory, nothing shared with the
 * host's state or another test. */
#ifndef BG_TEST_CTX_FIXTURE_H
#define BG_TEST_CTX_FIXTURE_H

#include "helpers.h"

#include <banger/banger.h>

/* Opens a context whose state directory is DIR/state_sub (DIR itself
 * when state_sub is NULL); *dir_out receives DIR, to be passed to
 * test_ctx_close. */
static inline banger_ctx *test_ctx_open(char **dir_out, const char *state_sub)
{
	char *dir = test_tmpdir();
	char state[4200], run[4200];
	snprintf(state, sizeof(state), "%s%s%s", dir, state_sub ? "/" : "", state_sub ? state_sub : "");
	snprintf(run, sizeof(run), "%s/run", dir);
	setenv("BANGER_RUNTIME_DIR", run, 1);
	unsetenv("BANGER_CACHE_DIR");
	banger_ctx_options o;
	assert_int_equal(banger_ctx_options_init(&o, BANGER_CTX_OPTIONS_VERSION), 0);
	o.state_dir = state;
	o.flags = BANGER_CTX_NO_RECONCILE;
	banger_ctx *ctx = NULL;
	assert_int_equal(banger_ctx_open(&ctx, &o), 0);
	*dir_out = dir;
	return ctx;
}

static inline void test_ctx_close(banger_ctx *ctx, char *dir)
{
	banger_ctx_close(ctx);
	test_rmrf(dir);
	free(dir);
	unsetenv("BANGER_RUNTIME_DIR");
}

#endif
