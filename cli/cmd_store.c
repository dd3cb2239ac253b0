/* banger store: the database as an index of the state root.
 *   store recover [--dry-run]   rebuild lost records from the directories */
#include "cli.h"

#include <stdlib.h>

static bool dry_run;

static const cli_opt recover_opts[] = {
	{ "dry-run", 'n', OPT_FLAG, &dry_run, "report what would be recovered, change nothing", NULL },
	{ 0 },
};

static int recover(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	banger_store_recover_options o;
	banger_store_recover_options_init(&o, BANGER_STORE_RECOVER_OPTIONS_VERSION);
	o.flags = dry_run ? BANGER_STORE_RECOVER_DRY_RUN : 0;
	o.progress = cli_progress_print_step;
	int n = banger_store_recover(ctx, &o);
	if (n < 0)
		return cli_fail("store recover", n);
	printf("%d record%s %s\n", n, n == 1 ? "" : "s", dry_run ? "would be recovered" : "recovered");
	return EXIT_OK;
}

/* Opened for recovery: an emptied store is not refused, and a damaged
 * database is moved aside (kept; also by a dry run, which could not read
 * it otherwise). */
static const cli_cmd store_subs[] = {
	{ "recover", "rebuild lost records from the VM, image and kernel directories", recover_opts, NULL,
	  CLI_CTX_RECOVER, recover, NULL, NULL },
	{ 0 },
};

const cli_cmd cli_store_cmd = { "store", "the database: recover it after a loss", NULL, NULL, 0, NULL, store_subs,
				NULL };
