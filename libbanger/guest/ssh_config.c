/* Plain `ssh root@NAME.vm`: banger's own ssh_config file (a "Host *.vm"
 * block with banger's known_hosts, identity and a ProxyCommand through
 * `banger ssh-proxy`), and its Include, placed first in the user's
 * ~/.ssh/config, every other byte of which is kept. */
#include "guest.h"
#include "../env/env.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INCLUDE_COMMENT "# banger: reach VMs as NAME.vm (`banger ssh-config uninstall` removes these two lines)\n"

/* The path of banger's file as the argument of Include: absolute, quoted,
 * no characters the config parser would mangle (Include expands no
 * '%' tokens). */
static int include_path_arg(bg_buf *b, const char *path)
{
	if (!path || path[0] != '/')
		return bg_error(BANGER_EINVALID, "cannot resolve an absolute path for banger's ssh_config");
	if (strpbrk(path, "\"\n\r"))
		return bg_error(BANGER_EINVALID, "the path of banger's ssh_config (%s) contains characters "
				"ssh_config cannot hold", path);
	bg_buf_printf(b, "\"%s\"", path);
	return 0;
}

BANGER_EXTERN(int) banger_ssh_config_path(char **out, banger_ctx *ctx)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = bg_path_join(env->layout.ssh_dir, "ssh_config");
	return *out ? 0 : bg_error_oom();
}

BANGER_EXTERN(int) banger_ssh_config_render(char **out, banger_ctx *ctx, const char *proxy_command)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = NULL;
	/* Plain `ssh NAME.vm`: HostName stays the name typed (the proxy looks
	 * the VM up by it), the key is pinned under it. */
	bg_ssh_target t = { .identity = env->layout.client_key,
			    .known_hosts = env->layout.known_hosts,
			    .host_name = "%h",
			    .proxy_command = proxy_command };
	bg_buf b = BG_BUF_INIT;
	bg_buf_puts(&b, "# Written by banger for plain `ssh root@NAME.vm`; `banger ssh-config install`\n"
			"# rewrites it, so edits here are lost.  Host keys are checked against\n"
			"# banger's own known_hosts, never disabled.\n"
			"Host *.vm\n");
	int rc = bg_ssh_policy_config(&b, &t);
	if (rc) {
		bg_buf_free(&b);
		return rc;
	}
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

static int include_line(char **out, const char *include_path)
{
	bg_buf b = BG_BUF_INIT;
	bg_buf_puts(&b, "Include ");
	int rc = include_path_arg(&b, include_path);
	if (rc == 0 && strpbrk(include_path, "*?[~"))
		rc = bg_error(BANGER_EINVALID, "the path %s would be taken as a pattern by Include", include_path);
	bg_buf_puts(&b, "\n");
	if (rc) {
		bg_buf_free(&b);
		return rc;
	}
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

int bg_ssh_config_include_text(char **out, size_t *out_len, const char *text, size_t len,
			       const char *include_path, bool install, bool *changed)
{
	*out = NULL;
	*out_len = 0;
	*changed = false;
	char *inc;
	int rc = include_line(&inc, include_path);
	if (rc)
		return rc;
	size_t cl = strlen(INCLUDE_COMMENT), il = strlen(inc);
	bg_buf b = BG_BUF_INIT;
	if (install && len >= cl + il && memcmp(text, INCLUDE_COMMENT, cl) == 0 && memcmp(text + cl, inc, il) == 0) {
		/* Already first: nothing to do. */
		bg_free(inc);
		return 0;
	}
	if (install) {
		bg_buf_puts(&b, INCLUDE_COMMENT);
		bg_buf_puts(&b, inc);
	}
	/* Copy the user's text, leaving out our block (or a bare copy of
	 * our Include line) wherever it is. */
	size_t off = 0;
	bool removed = false;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t ll = nl ? (size_t)(nl - (text + off)) + 1 : len - off;
		const char *line = text + off;
		if (ll == cl && memcmp(line, INCLUDE_COMMENT, cl) == 0 && off + cl + il <= len &&
		    memcmp(text + off + cl, inc, il) == 0) {
			off += cl + il;
			removed = true;
			continue;
		}
		if (ll == il && memcmp(line, inc, il) == 0) {
			off += il;
			removed = true;
			continue;
		}
		bg_buf_put(&b, line, ll);
		off += ll;
	}
	bg_free(inc);
	if (b.oom) {
		bg_buf_free(&b);
		return bg_error_oom();
	}
	*changed = install || removed;
	if (!*changed) {
		bg_buf_free(&b);
		return 0;
	}
	*out_len = b.len;
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

/* $HOME/.ssh/config, resolving a symlink so that the atomic rename
 * replaces the user's real file, not their link. */
static int user_config_path(char **out, const char *given)
{
	*out = NULL;
	char *path;
	if (given) {
		path = bg_strdup(given);
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || !*home)
			return bg_error(BANGER_EINVALID, "cannot find the home directory ($HOME is not set)");
		path = bg_sprintf("%s/.ssh/config", home);
	}
	if (!path)
		return bg_error_oom();
	char real[PATH_MAX];
	if (realpath(path, real)) {
		bg_free(path);
		path = bg_strdup(real);
		if (!path)
			return bg_error_oom();
	}
	*out = path;
	return 0;
}

static int edit_user_config(int *out, banger_ctx *ctx, const char *user_config, bool install)
{
	if (out)
		*out = 0;
	char *inc = NULL, *path = NULL, *text = NULL, *res = NULL, *dir = NULL;
	size_t len = 0, res_len = 0;
	bool changed = false;
	int rc;
	if ((rc = banger_ssh_config_path(&inc, ctx)) || (rc = user_config_path(&path, user_config)))
		goto out;
	rc = bg_read_file(&text, &len, path, 16u << 20);
	if (rc == BANGER_ENOTFOUND) {
		if (!install) {
			rc = 0;
			goto out;
		}
		text = bg_strdup("");
		rc = text ? 0 : bg_error_oom();
	}
	if (rc)
		goto out;
	if ((rc = bg_ssh_config_include_text(&res, &res_len, text, len, inc, install, &changed)) || !changed)
		goto out;
	struct stat st;
	mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0600;
	if (!(dir = bg_strdup(path))) {
		rc = bg_error_oom();
		goto out;
	}
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (!bg_path_exists(dir) && (rc = bg_mkdir_p(dir, 0700)))
			goto out;
	}
	if ((rc = bg_write_file_atomic(path, res, res_len, mode)))
		goto out;
	if (out)
		*out = 1;
out:
	bg_free(inc);
	bg_free(path);
	bg_free(text);
	bg_free(res);
	bg_free(dir);
	return rc;
}

BANGER_EXTERN(int) banger_ssh_config_install(int *out, banger_ctx *ctx, const char *user_config,
					     const char *proxy_command)
{
	bg_env *env = bg_env_of(ctx);
	if (out)
		*out = 0;
	if (!env)
		return bg_error(BANGER_EINVALID, "a context is required");
	char *body = NULL, *path = NULL;
	int rc;
	if ((rc = banger_ssh_config_render(&body, ctx, proxy_command)) || (rc = banger_ssh_config_path(&path, ctx)) ||
	    (rc = bg_write_file_atomic(path, body, strlen(body), 0600)) ||
	    (rc = bg_client_key_ensure(env->layout.client_key, NULL)))
		goto out;
	rc = edit_user_config(out, ctx, user_config, true);
out:
	bg_free(body);
	bg_free(path);
	return rc;
}

BANGER_EXTERN(int) banger_ssh_config_uninstall(int *out, banger_ctx *ctx, const char *user_config)
{
	bg_env *env = bg_env_of(ctx);
	if (!env)
		return bg_error(BANGER_EINVALID, "a context is required");
	return edit_user_config(out, ctx, user_config, false);
}

BANGER_EXTERN(int) banger_ssh_config_installed(int *out, banger_ctx *ctx, const char *user_config)
{
	bg_env *env = bg_env_of(ctx);
	if (!out || !env)
		return bg_error(BANGER_EINVALID, "invalid argument");
	*out = 0;
	char *inc = NULL, *path = NULL, *text = NULL, *line = NULL;
	size_t len = 0;
	int rc;
	if ((rc = banger_ssh_config_path(&inc, ctx)) || (rc = user_config_path(&path, user_config)) ||
	    (rc = include_line(&line, inc)))
		goto out;
	rc = bg_read_file(&text, &len, path, 16u << 20);
	if (rc == BANGER_ENOTFOUND) {
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	size_t cl = strlen(INCLUDE_COMMENT);
	*out = len >= cl && memcmp(text, INCLUDE_COMMENT, cl) == 0 && bg_startswith(text + cl, line);
out:
	bg_free(inc);
	bg_free(path);
	bg_free(text);
	bg_free(line);
	return rc;
}
