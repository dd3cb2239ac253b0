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

/* One word of the ProxyCommand: quoted (by the library) for the shell
 * ssh runs it with, then every '%' doubled, as ssh_config expands
 * %-tokens before that shell sees the line.  NULL on failure. */
static char *proxy_word(const char *s)
{
	char *q = NULL;
	if (banger_text_shell_quote(&q, &s, 1))
		return NULL;
	size_t n = strlen(q) + 1;
	for (const char *p = q; *p; p++)
		n += *p == '%';
	char *out = malloc(n), *o = out;
	for (const char *p = q; out && *p; p++) {
		if (*p == '%')
			*o++ = '%';
		*o++ = *p;
	}
	if (out)
		*o = '\0';
	banger_free(q);
	return out;
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
	char *qe = proxy_word(exe), *qs = proxy_word(banger_ctx_state_dir(ctx));
	size_t cap = qe && qs ? strlen(qe) + strlen(qs) + 64 : 0;
	char *cmd = cap ? malloc(cap) : NULL;
	if (cmd)
		snprintf(cmd, cap, "%s --state-dir %s ssh-proxy %%h %%p", qe, qs);
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
	  NULL, NULL },
	{ "uninstall", "remove the Include from ~/.ssh/config", opts, NULL, CLI_CTX, uninstall, NULL, NULL },
	{ "show", "print banger's ssh config and whether it is included", opts, NULL, CLI_CTX, show, NULL, NULL },
	{ 0 },
};

const cli_cmd cli_ssh_config_cmd = { "ssh-config", "plain `ssh root@NAME.vm` with verified host keys", NULL, NULL,
				     0, NULL, subs, NULL };
