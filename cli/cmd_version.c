/* banger version */
#include "cli.h"

#include <stdlib.h>

static const cli_opt opts[] = { { 0 } };

static int run(cli_env *env, int argc, char **argv)
{
	const char **pos;
	int npos, rc;
	(void)env;
	rc = cli_parse_or_usage("version", &cli_version_cmd, opts, argc, argv, &pos, &npos, NULL, NULL);
	free(pos);
	if (rc >= 0)
		return rc;
	printf("banger %s (libbanger %s)\n", BANGER_VERSION, banger_version());
	return EXIT_OK;
}

const cli_cmd cli_version_cmd = { "version", "print banger's version", NULL, run, NULL };
