/* A recording bg_host_ops for unit tests: every privileged call is
 * appended to a log ("tap_delete bg1234abcd"), nothing touches the host. */
#ifndef BG_FAKE_HOST_H
#define BG_FAKE_HOST_H

#include "../../libbanger/host/host.h"

#include <stdio.h>
#include <string.h>

typedef struct {
	char log[64][160];
	int n;
	/* what the fake "host" has, reported by the list calls */
	const char *taps[8];
	const char *loops[8];
	const char *nat_ids[8];
} fake_host;

/* "op a" or "op a b" */
static void fh_log(fake_host *f, const char *op, const char *a, const char *b)
{
	if (f->n < 64)
		snprintf(f->log[f->n++], sizeof(f->log[0]), "%s %s%s%s", op, a, b ? " " : "", b ? b : "");
}

static int fh_strv(const char *const *src, char ***out, size_t *count)
{
	size_t n = 0;
	while (n < 8 && src[n])
		n++;
	*out = n ? bg_calloc(n, sizeof(char *)) : NULL;
	for (size_t i = 0; i < n; i++)
		(*out)[i] = bg_strdup(src[i]);
	*count = n;
	return 0;
}

static int fh_tap_create(void *s, const char *name, const char *ip, int prefix)
{ (void)prefix; fh_log(s, "tap_create", name, ip); return 0; }
static int fh_tap_delete(void *s, const char *name) { fh_log(s, "tap_delete", name, NULL); return 0; }
static int fh_tap_list(void *s, const char *prefix, char ***names, size_t *n)
{ (void)prefix; return fh_strv(((fake_host *)s)->taps, names, n); }
static int fh_loop_attach(void *s, const char *file, bool ro, char **dev, int *keep_fd)
{ (void)ro; if (keep_fd) *keep_fd = -1; fh_log(s, "loop_attach", file, NULL); *dev = bg_strdup("/dev/loop99"); return 0; }
static int fh_loop_detach(void *s, const char *dev) { fh_log(s, "loop_detach", dev, NULL); return 0; }
static int fh_loop_list(void *s, const char *dir, char ***devs, size_t *n)
{ (void)dir; return fh_strv(((fake_host *)s)->loops, devs, n); }
static int fh_dm_create(void *s, const char *name, const char *o, const char *c, uint64_t sectors)
{ (void)o; (void)c; (void)sectors; fh_log(s, "dm_create", name, NULL); return 0; }
static int fh_dm_remove(void *s, const char *name) { fh_log(s, "dm_remove", name, NULL); return 0; }
static int fh_dm_list(void *s, const char *prefix, char ***names, size_t *n)
{ (void)s; (void)prefix; *names = NULL; *n = 0; return 0; }
static int fh_nat_add(void *s, const char *t, const char *id, const char *tap, const char *ip)
{ (void)t; (void)ip; fh_log(s, "nat_add", id, tap); return 0; }
static int fh_nat_remove(void *s, const char *t, const char *id) { (void)t; fh_log(s, "nat_remove", id, NULL); return 0; }
static int fh_nat_list(void *s, const char *t, char ***ids, size_t *n)
{ (void)t; return fh_strv(((fake_host *)s)->nat_ids, ids, n); }
static int fh_terminate(void *s, pid_t pid, int grace)
{
	char p[32];
	(void)grace;
	snprintf(p, sizeof(p), "%d", (int)pid);
	fh_log(s, "terminate", p, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 0;
}

static bg_host_ops fake_host_ops(fake_host *f)
{
	bg_host_ops o = {
		f, fh_tap_create, fh_tap_delete, fh_tap_list, fh_loop_attach, fh_loop_detach,
		fh_loop_list, fh_dm_create, fh_dm_remove, fh_dm_list, fh_nat_add, fh_nat_remove,
		fh_nat_list, fh_terminate,
	};
	return o;
}

#endif
