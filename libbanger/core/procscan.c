/* Finding processes by command line through /proc (what pgrep -f does),
 * used to rediscover VMM pids: the command line names the VM's socket. */
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')'); /* comm may contain spaces */
	return !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X';
}

bool bg_proc_alive(pid_t pid)
{
	return pid > 0 && !is_zombie(pid);
}

bool bg_proc_cmdline_has(pid_t pid, const char *needle)
{
	if (pid <= 0 || !needle || !*needle)
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* Arguments are NUL-separated: look inside each one. */
	size_t nl = strlen(needle);
	bool found = false;
	for (ssize_t i = 0; i < n && !found;) {
		const char *arg = buf + i;
		size_t al = strlen(arg);
		if (al >= nl && memmem(arg, al, needle, nl))
			found = true;
		i += (ssize_t)al + 1;
	}
	return found && !is_zombie(pid);
}

int bg_proc_find(pid_t **pids, size_t *count, const char *needle)
{
	*pids = NULL;
	*count = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return bg_error_os(BANGER_EIO, errno, "opendir /proc");
	pid_t self = getpid();
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		if (*end || v <= 0 || (pid_t)v == self)
			continue;
		if (!bg_proc_cmdline_has((pid_t)v, needle))
			continue;
		if (*count == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			pid_t *np = bg_realloc(*pids, ncap * sizeof(pid_t));
			if (!np) {
				rc = bg_error_oom();
				break;
			}
			*pids = np;
			cap = ncap;
		}
		(*pids)[(*count)++] = (pid_t)v;
	}
	closedir(d);
	if (rc) {
		bg_free(*pids);
		*pids = NULL;
		*count = 0;
	}
	return rc;
}

#ifdef BANGER_TEST_HOOKS
void bg_fault_point(const char *step)
{
	const char *want = getenv("BANGER_FAULT");
	if (want && strcmp(want, step) == 0)
		kill(getpid(), SIGKILL);
}

int bg_fault_step(const char *step)
{
	bg_fault_point(step);
	const char *want = getenv("BANGER_FAULT_FAIL");
	if (want && strcmp(want, step) == 0)
		return bg_error(BANGER_ERROR, "injected failure at %s", step);
	return 0;
}
#else
/* A library built without tests (the one that is installed) reads no
 * test variable from the environment: a program that links it must not
 * be killable through $BANGER_FAULT. */
void bg_fault_point(const char *step)
{
	(void)step;
}

int bg_fault_step(const char *step)
{
	(void)step;
	return 0;
}
#endif
