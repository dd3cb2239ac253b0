/* banger's OpenSSH client policy, written once.  Every way banger has the
 * system ssh reach a guest (`banger vm ssh` through banger_vm_ssh_argv,
 * and plain `ssh root@NAME.vm` through the "Host *.vm" block of
 * `banger ssh-config`) takes its options from bg_ssh_policy_make, and
 * only renders them differently: "Key value" lines or "-o Key=value"
 * words.  ssh reads both with the same parser, so one quoted value
 * serves both.
 *
 * ssh keeps the first value it obtains for an option, and both renderings
 * come before anything of the user's (command line first; the Include
 * first in ~/.ssh/config), so every option set here wins over a user's
 * "Host *".  That is why the set also names what could redirect the
 * connection: HostName, Port and ProxyCommand (a ProxyCommand, even
 * "none", makes ssh ignore any later ProxyJump). */
#include "guest.h"

#include <stdio.h>
#include <string.h>

/* A word ssh takes as it is: no blanks, quotes, backslash escapes,
 * comments or line breaks. */
static int plain_value(char **out, const char *what, const char *v)
{
	if (!v || !*v || strpbrk(v, " \t\"'\\#\n\r"))
		return bg_error(BANGER_EINVALID, "%s '%s' cannot be given to ssh as one word", what, v ? v : "");
	*out = bg_strdup(v);
	return *out ? 0 : bg_error_oom();
}

/* A path as one quoted argument with '%' doubled (IdentityFile and
 * UserKnownHostsFile expand tokens).  A relative path, a quote or a
 * backslash (ssh's escape character, even inside quotes) is refused:
 * ssh would read another file, and a known_hosts path ssh misreads
 * would check host keys against a file banger never pinned. */
static int path_value(char **out, const char *what, const char *path)
{
	if (!path || path[0] != '/')
		return bg_error(BANGER_EINVALID, "cannot resolve an absolute path for %s; refusing an ssh "
				"configuration that could not verify host keys", what);
	if (strpbrk(path, "\"\\\n\r"))
		return bg_error(BANGER_EINVALID, "the path of %s (%s) contains characters ssh cannot read back",
				what, path);
	bg_buf b = BG_BUF_INIT;
	bg_buf_puts(&b, "\"");
	for (const char *p = path; *p; p++)
		bg_buf_puts(&b, *p == '%' ? "%%" : (char[]){ *p, 0 });
	bg_buf_puts(&b, "\"");
	if (b.oom) {
		bg_buf_free(&b);
		return bg_error_oom();
	}
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

static void add(bg_ssh_policy *p, const char *key, char *value)
{
	p->opt[p->count].key = key;
	p->opt[p->count].value = value;
	p->count++;
}

static int add_fixed(bg_ssh_policy *p, const char *key, const char *value)
{
	char *v = bg_strdup(value);
	if (!v)
		return bg_error_oom();
	add(p, key, v);
	return 0;
}

static int add_plain(bg_ssh_policy *p, const char *key, const char *what, const char *value)
{
	char *v;
	int rc = plain_value(&v, what, value);
	if (rc == 0)
		add(p, key, v);
	return rc;
}

static int add_path(bg_ssh_policy *p, const char *key, const char *what, const char *path)
{
	char *v;
	int rc = path_value(&v, what, path);
	if (rc == 0)
		add(p, key, v);
	return rc;
}

void bg_ssh_policy_clear(bg_ssh_policy *p)
{
	for (size_t i = 0; i < p->count; i++)
		bg_free(p->opt[i].value);
	p->count = 0;
}

int bg_ssh_policy_make(bg_ssh_policy *out, const bg_ssh_target *t)
{
	out->count = 0;
	if (t->proxy_command && (!*t->proxy_command || strpbrk(t->proxy_command, "\n\r")))
		return bg_error(BANGER_EINVALID, "ProxyCommand must be one line");
	char port[8];
	snprintf(port, sizeof(port), "%u", t->port ? (unsigned)t->port : 22u);
	int rc;
	if ((rc = add_plain(out, "User", "user", t->user ? t->user : "root")) ||
	    (t->host_name && (rc = add_plain(out, "HostName", "host name", t->host_name))) ||
	    (rc = add_fixed(out, "Port", port)) ||
	    (rc = add_path(out, "IdentityFile", "banger's client key", t->identity)) ||
	    (rc = add_fixed(out, "IdentitiesOnly", "yes")) ||
	    (rc = add_path(out, "UserKnownHostsFile", "banger's known_hosts", t->known_hosts)) ||
	    /* banger's file is the only one that vouches for a guest: a
	     * system-wide ssh_known_hosts entry for a reused guest IP or
	     * for a NAME.vm would otherwise count as a match. */
	    (rc = add_fixed(out, "GlobalKnownHostsFile", "none")) ||
	    (rc = add_fixed(out, "StrictHostKeyChecking", "accept-new")) ||
	    (t->host_key_alias && (rc = add_plain(out, "HostKeyAlias", "host key alias", t->host_key_alias))) ||
	    (rc = add_fixed(out, "HashKnownHosts", "no")) || (rc = add_fixed(out, "CheckHostIP", "no")) ||
	    (rc = add_fixed(out, "UpdateHostKeys", "no")) ||
	    (rc = add_fixed(out, "ProxyCommand", t->proxy_command ? t->proxy_command : "none"))) {
		bg_ssh_policy_clear(out);
		return rc;
	}
	return 0;
}

int bg_ssh_policy_config(bg_buf *b, const bg_ssh_target *t)
{
	bg_ssh_policy p;
	int rc = bg_ssh_policy_make(&p, t);
	if (rc)
		return rc;
	for (size_t i = 0; i < p.count; i++)
		bg_buf_printf(b, "\t%s %s\n", p.opt[i].key, p.opt[i].value);
	bg_ssh_policy_clear(&p);
	return b->oom ? bg_error_oom() : 0;
}

int bg_ssh_argv(char ***out, const bg_ssh_target *t, const char *program, const char *destination,
		const char *const *command, size_t ncommand)
{
	*out = NULL;
	if (!program || !*program || !destination || !*destination || (ncommand && !command))
		return bg_error(BANGER_EINVALID, "invalid argument");
	for (size_t i = 0; i < ncommand; i++)
		if (!command[i])
			return bg_error(BANGER_EINVALID, "command word %zu is NULL", i);
	bg_ssh_policy p;
	int rc = bg_ssh_policy_make(&p, t);
	if (rc)
		return rc;
	/* One allocation: the pointers, then the strings they point to, so a
	 * caller (any language) frees it with one banger_free. */
	size_t nargs = 1 + 2 * p.count + 2 + ncommand, bytes = strlen(program) + 1 + 3 + strlen(destination) + 1;
	for (size_t i = 0; i < p.count; i++)
		bytes += 3 + strlen(p.opt[i].key) + 1 + strlen(p.opt[i].value) + 1;
	for (size_t i = 0; i < ncommand; i++)
		bytes += strlen(command[i]) + 1;
	char **argv = bg_malloc((nargs + 1) * sizeof(char *) + bytes);
	if (!argv) {
		bg_ssh_policy_clear(&p);
		return bg_error_oom();
	}
	char *s = (char *)(argv + nargs + 1);
	size_t n = 0;
#define PUT(...) (argv[n++] = s, s += sprintf(s, __VA_ARGS__) + 1)
	PUT("%s", program);
	for (size_t i = 0; i < p.count; i++) {
		PUT("-o");
		PUT("%s=%s", p.opt[i].key, p.opt[i].value);
	}
	/* "--": neither the destination nor a command word is taken for an
	 * option of ssh's. */
	PUT("--");
	PUT("%s", destination);
	for (size_t i = 0; i < ncommand; i++)
		PUT("%s", command[i]);
#undef PUT
	argv[n] = NULL;
	bg_ssh_policy_clear(&p);
	*out = argv;
	return 0;
}
