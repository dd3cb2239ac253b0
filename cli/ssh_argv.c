/* The argv for `banger vm ssh NAME [-- CMD...]`: the system ssh with
 * banger's identity and known_hosts.  Host-key checking is never turned
 * off: accept-new against banger's own file, and "yes" (fail closed)
 * when that file cannot be named safely. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* ssh expands %-tokens in IdentityFile and UserKnownHostsFile and splits
 * -o values on blanks unless quoted: double the '%' and quote.  NULL when
 * the path cannot be passed safely (or on allocation failure). */
static char *ssh_path_value(const char *prefix, const char *path, bool quote)
{
	if (!path || path[0] != '/' || strpbrk(path, "\"\n\r"))
		return NULL;
	size_t n = strlen(prefix) + 2 * strlen(path) + 3;
	char *out = malloc(n), *o = out;
	if (!out)
		return NULL;
	o += sprintf(o, "%s%s", prefix, quote ? "\"" : "");
	for (const char *p = path; *p; p++) {
		if (*p == '%')
			*o++ = '%';
		*o++ = *p;
	}
	if (quote)
		*o++ = '"';
	*o = '\0';
	return out;
}

void cli_ssh_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

char **cli_ssh_argv(const cli_ssh_target *t)
{
	if (!t || !t->vm_name || !*t->vm_name || !t->ip || !*t->ip || t->ncommand < 0)
		return NULL;
	size_t max = 24 + (size_t)t->ncommand;
	char **argv = calloc(max, sizeof(char *));
	if (!argv)
		return NULL;
	size_t n = 0;
	bool ok = true;
#define ADD(expr)                                  \
	do {                                       \
		char *v_ = (expr);                 \
		if (!v_)                           \
			ok = false;                \
		else                               \
			argv[n++] = v_;            \
	} while (0)
	ADD(strdup(t->ssh ? t->ssh : "ssh"));
	if (t->identity) {
		char *id = ssh_path_value("", t->identity, false);
		if (id) {
			ADD(strdup("-i"));
			ADD(id);
			ADD(strdup("-o"));
			ADD(strdup("IdentitiesOnly=yes"));
		}
	}
	char *kh = t->known_hosts && *t->known_hosts ? ssh_path_value("UserKnownHostsFile=", t->known_hosts, true)
						      : NULL;
	if (kh) {
		ADD(strdup("-o"));
		ADD(kh);
		ADD(strdup("-o"));
		ADD(strdup("StrictHostKeyChecking=accept-new"));
	} else {
		/* Where banger's file is cannot be told: only keys already
		 * known to ssh are accepted. */
		ADD(strdup("-o"));
		ADD(strdup("StrictHostKeyChecking=yes"));
	}
	ADD(strdup("-o"));
	{
		size_t l = strlen(t->vm_name) + 32;
		char *alias = malloc(l);
		if (alias)
			snprintf(alias, l, "HostKeyAlias=%s.vm", t->vm_name);
		ADD(alias);
	}
	static const char *const fixed[] = { "HashKnownHosts=no", "CheckHostIP=no", "UpdateHostKeys=no" };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		ADD(strdup("-o"));
		ADD(strdup(fixed[i]));
	}
	if (t->port && t->port != 22) {
		char port[16];
		snprintf(port, sizeof(port), "%u", (unsigned)t->port);
		ADD(strdup("-p"));
		ADD(strdup(port));
	}
	ADD(strdup("--"));
	{
		const char *user = t->user ? t->user : "root";
		size_t l = strlen(user) + strlen(t->ip) + 2;
		char *dest = malloc(l);
		if (dest)
			snprintf(dest, l, "%s@%s", user, t->ip);
		ADD(dest);
	}
	for (int i = 0; i < t->ncommand; i++)
		ADD(strdup(t->command[i]));
#undef ADD
	argv[n] = NULL;
	if (!ok) {
		cli_ssh_argv_free(argv);
		return NULL;
	}
	return argv;
}
