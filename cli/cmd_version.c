/* banger version */
#include "cli.h"

#include <stdlib.h>

static const cli_opt opts[] = { { 0 } };

static int run(cli_env *env, const cli_call *call)
{
	printf("banger %s (libbanger %s)\n", BANGER_VERSION, banger_version());
	return EXIT_OK;
}

const cli_cmd cli_version_cmd = { "version", "print banger's version", opts, NULL, 0, run, NULL, NULL };
