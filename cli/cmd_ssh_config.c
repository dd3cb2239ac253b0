/* banger ssh-config install|uninstall|show: plain `ssh root@NAME.vm`.
 *
 * banger writes its own file (<state>/ssh/ssh_config: "Host *.vm" with
 * the library's SSH policy, the options `banger vm ssh` passes too) and
 * puts an Include of it first in ~/.ssh/config.  Guests are reached by name through
 * `ProxyCommand banger ssh-proxy %h %p`, which looks the VM up when ssh
 * runs, so nothing needs regenerating when VMs come and go. */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Single-quote for the shell ssh runs ProxyCommand with. */
static void shell_quote(char *out, size_t n, const char *s)
{
	size_t o = 0;
	if (o + 1 < n)
		out[o++] = '\'';
	for (; *s && o + 5 < n; s++) {
		if (*s == '\'') {
			memcpy(out + o, "'\\''", 4);
			o += 4;
		} else if (*s == '%') { /* ssh_config token escape */
			out[o++] = '%';
			out[o++] = '%';
		} else {
			out[o++] = *s;
		}
	}
	if (o + 1 < n)
		out[o++] = '\'';
	out[o] = '\0';
}

/* "<this banger> --state-dir <state> ssh-proxy %h %p" */
static char *proxy_command(banger_ctx *ctx)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "banger ssh-config: cannot find the banger executable\n");
		return NULL;
	}
	exe[n] = '\0';
	const char *state = banger_ctx_state_dir(ctx);
	size_t cap = 4 * (strlen(exe) + strlen(state)) + 64;
	char *qe = malloc(cap), *qs = malloc(cap), *cmd = malloc(2 * cap + 64);
	if (!qe || !qs || !cmd) {
		free(qe);
		free(qs);
		free(cmd);
		return NULL;
	}
	shell_quote(qe, cap, exe);
	shell_quote(qs, cap, state);
	snprintf(cmd, 2 * cap + 64, "%s --state-dir %s ssh-proxy %%h %%p", qe, qs);
	free(qe);
	free(qs);
	return cmd;
}

static const char *cfg_file;
static const cli_opt opts[] = {
	{ "file", 'f', OPT_STRING, &cfg_file, "the ssh config to edit (default ~/.ssh/config)", "FILE" },
	{ 0 },
};

static int install(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	char *proxy = proxy_command(ctx);
	if (!proxy)
		return EXIT_FAILURE_;
	int changed = 0;
	rc = banger_ssh_config_install(&changed, ctx, cfg_file, proxy);
	free(proxy);
	if (rc)
		return cli_fail("ssh-config install", rc);
	char *path = NULL;
	if (banger_ssh_config_path(&path, ctx) == 0)
		printf("%s %s (Include first in %s)\n", changed ? "installed" : "already installed", path,
		       cfg_file ? cfg_file : "~/.ssh/config");
	banger_free(path);
	return EXIT_OK;
}

static int uninstall(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	int changed = 0;
	if ((rc = banger_ssh_config_uninstall(&changed, ctx, cfg_file)))
		return cli_fail("ssh-config uninstall", rc);
	printf("%s\n", changed ? "removed the Include of banger's ssh config" : "not installed");
	return EXIT_OK;
}

static int show(cli_env *env, const cli_call *call)
{
	banger_ctx *ctx = call->ctx;
	int rc;
	char *proxy = proxy_command(ctx), *text = NULL, *path = NULL;
	int installed = 0;
	if (!proxy)
		return EXIT_FAILURE_;
	if ((rc = banger_ssh_config_render(&text, ctx, proxy)) || (rc = banger_ssh_config_path(&path, ctx)) ||
	    (rc = banger_ssh_config_installed(&installed, ctx, cfg_file))) {
		free(proxy);
		banger_free(text);
		banger_free(path);
		return cli_fail("ssh-config show", rc);
	}
	printf("# %s (%s)\n%s", path, installed ? "installed" : "not installed: run `banger ssh-config install`",
	       text);
	free(proxy);
	banger_free(text);
	banger_free(path);
	return EXIT_OK;
}

static const cli_cmd subs[] = {
	{ "install", "write banger's ssh config and Include it first in ~/.ssh/config", opts, NULL, CLI_CTX, install,
	  NULL },
	{ "uninstall", "remove the Include from ~/.ssh/config", opts, NULL, CLI_CTX, uninstall, NULL },
	{ "show", "print banger's ssh config and whether it is included", opts, NULL, CLI_CTX, show, NULL },
	{ 0 },
};

const cli_cmd cli_ssh_config_cmd = { "ssh-config", "plain `ssh root@NAME.vm` with verified host keys", NULL, NULL,
				     0, NULL, subs };
