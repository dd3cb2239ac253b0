/* banger ssh-proxy HOST PORT: the ProxyCommand behind `banger ssh-config`
 * (relays stdin/stdout to the guest named HOST, "NAME.vm"). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static const cli_opt opts[] = { { 0 } };
static uint16_t port;

static int check_port(const cli_call *call)
{
	char *end;
	errno = 0;
	unsigned long p = strtoul(call->pos[1], &end, 10);
	if (errno || *end || p == 0 || p > 65535) {
		fprintf(stderr, "banger ssh-proxy: invalid port\n");
		return EXIT_USAGE;
	}
	port = (uint16_t)p;
	return 0;
}

static int ssh_proxy(cli_env *env, const cli_call *call)
{
	const char *host = call->pos[0];
	int rc;
	if ((rc = banger_ssh_proxy(call->ctx, host, port, STDIN_FILENO, STDOUT_FILENO)))
		return cli_fail("ssh-proxy", rc);
	return EXIT_OK;
}

static const cli_arg args[] = { { "HOST", ARG_ONE, "the guest: NAME.vm or the VM's name" },
				{ "PORT", ARG_ONE, "its TCP port" }, { 0 } };

const cli_cmd cli_ssh_proxy_cmd = { "ssh-proxy", "relay ssh to a guest (the ProxyCommand of `banger ssh-config`)",
				    opts, args, CLI_CTX, ssh_proxy, NULL, check_port };
