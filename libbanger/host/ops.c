/* The real bg_host_ops: system calls, rtnetlink, nft. */
#include "host.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

void bg_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		bg_free(v[i]);
	bg_free(v);
}

static int real_tap_create(void *self, const char *name, const char *ip, int prefix)
{
	(void)self;
	return bg_tap_create(name, ip, prefix);
}
static int real_tap_delete(void *self, const char *name)
{
	(void)self;
	return bg_tap_delete(name);
}
static int real_tap_list(void *self, const char *prefix, char ***names, size_t *n)
{
	(void)self;
	return bg_link_list(prefix, names, n);
}
static int real_loop_attach(void *self, const char *file, bool ro, char **dev, int *keep_fd)
{
	(void)self;
	return bg_loop_attach(file, ro, dev, keep_fd);
}
static int real_loop_detach(void *self, const char *dev)
{
	(void)self;
	return bg_loop_detach(dev);
}
static int real_loop_list(void *self, const char *dir, char ***devs, size_t *n)
{
	(void)self;
	return bg_loop_list_under(dir, devs, n);
}
static int real_dm_create(void *self, const char *name, const char *origin, const char *cow, uint64_t sectors)
{
	(void)self;
	return bg_dm_snapshot_create(name, origin, cow, sectors);
}
static int real_dm_remove(void *self, const char *name)
{
	(void)self;
	return bg_dm_available() ? bg_dm_remove(name) : 0;
}
static int real_dm_list(void *self, const char *prefix, char ***names, size_t *n)
{
	(void)self;
	return bg_dm_list(prefix, names, n);
}
static int real_nat_add(void *self, const char *table, const char *id, const char *tap, const char *ip)
{
	(void)self;
	return bg_nat_add(table, id, tap, ip);
}
static int real_nat_remove(void *self, const char *table, const char *id)
{
	(void)self;
	return bg_nat_remove(table, id);
}
static int real_nat_list(void *self, const char *table, char ***ids, size_t *n)
{
	(void)self;
	return bg_nat_list(table, ids, n);
}

/* SIGTERM, wait up to grace_ms, SIGKILL, wait until gone.  The VMM is
 * usually not our child (it was reparented), so poll kill(pid, 0). */
static int real_process_terminate(void *self, pid_t pid, int grace_ms)
{
	(void)self;
	if (pid <= 0)
		return 0;
	if (kill(pid, SIGTERM) != 0)
		return errno == ESRCH ? 0 : bg_error_os(BANGER_EIO, errno, "kill %d", (int)pid);
	int64_t deadline = bg_now_ms() + grace_ms;
	bool killed = false;
	for (;;) {
		waitpid(pid, NULL, WNOHANG); /* reap if it is our child */
		if (!bg_proc_alive(pid)) /* gone, or a zombie its parent will reap */
			return 0;
		if (bg_now_ms() >= deadline) {
			if (killed)
				return bg_error(BANGER_ETIMEOUT, "process %d did not exit after SIGKILL", (int)pid);
			kill(pid, SIGKILL);
			killed = true;
			deadline = bg_now_ms() + 5000;
		}
		bg_sleep_ms(20);
	}
}

static const bg_host_ops real_ops = {
	.self = NULL,
	.tap_create = real_tap_create,
	.tap_delete = real_tap_delete,
	.tap_list = real_tap_list,
	.loop_attach = real_loop_attach,
	.loop_detach = real_loop_detach,
	.loop_list = real_loop_list,
	.dm_snapshot_create = real_dm_create,
	.dm_remove = real_dm_remove,
	.dm_list = real_dm_list,
	.nat_add = real_nat_add,
	.nat_remove = real_nat_remove,
	.nat_list = real_nat_list,
	.process_terminate = real_process_terminate,
};

const bg_host_ops *bg_host_ops_real(void)
{
	return &real_ops;
}
