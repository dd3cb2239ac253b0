/* banger ssh-proxy HOST PORT: the ProxyCommand behind `banger ssh-config`
 * (relays stdin/stdout to the guest named HOST, "NAME.vm"). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static const cli_opt opts[] = { { 0 } };

static int ssh_proxy(cli_env *env, int argc, char **argv)
{
	const char **pos;
	int npos;
	int rc = cli_parse_or_usage("ssh-proxy", &cli_ssh_proxy_cmd, opts, argc, argv, &pos, &npos, NULL, NULL);
	if (rc >= 0) {
		free(pos);
		return rc;
	}
	if (npos != 2) {
		free(pos);
		fprintf(stderr, "banger ssh-proxy: expected HOST and PORT\n");
		return EXIT_USAGE;
	}
	const char *host = pos[0];
	char *end;
	errno = 0;
	unsigned long port = strtoul(pos[1], &end, 10);
	free(pos);
	if (errno || *end || port == 0 || port > 65535) {
		fprintf(stderr, "banger ssh-proxy: invalid port\n");
		return EXIT_USAGE;
	}
	banger_ctx *ctx = cli_ctx(env);
	if (!ctx)
		return EXIT_FAILURE_;
	if ((rc = banger_ssh_proxy(ctx, host, (uint16_t)port, STDIN_FILENO, STDOUT_FILENO)))
		return cli_fail("ssh-proxy", rc);
	return EXIT_OK;
}

const cli_cmd cli_ssh_proxy_cmd = { "ssh-proxy", "relay ssh to a guest (the ProxyCommand of `banger ssh-config`)",
				    "HOST PORT", ssh_proxy, NULL };
