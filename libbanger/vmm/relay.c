/* The console relay: a per-VM handle like the VMM process itself.
 *
 * banger-console (helpers/banger-console.c) reads the VMM's stdout and
 * stderr from a pipe and keeps the console log bounded, rotating it to
 * <log>.1.  It is spawned with the VMM (spawn.c), ends on its own when
 * the VMM is gone (the pipe closes), and is found again by its command
 * line, which names the log: "banger-console --log <log> --max N".
 * Teardown stops whatever relay still names a VM's log after the VMM was
 * stopped, and readers of the log (boot errors, `vm logs`) read the tail
 * across the rotation. */
#include "vmm.h"
#include "../layout/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RELAY_NAME "banger-console"

int bg_vmm_relay_program(char **out)
{
	int rc = bg_guest_file(out, RELAY_NAME);
	if (rc == BANGER_ENOTFOUND) {
		/* without it no console bound can be kept: "unsupported here" */
		char why[512];
		snprintf(why, sizeof(why), "%s", banger_error_last()->message);
		rc = bg_error(BANGER_EUNSUPPORTED, "the console relay %s (set BANGER_CONSOLE_RELAY to its absolute path)",
			      why);
	}
	return rc;
}

/* Is pid a relay for exactly this log?  argv: <dir>/banger-console --log
 * <log> --max N. */
static bool is_relay_for(pid_t pid, const char *log_path)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *args[3] = { NULL, NULL, NULL };
	ssize_t i = 0;
	for (int k = 0; k < 3 && i < n; k++) {
		args[k] = buf + i;
		i += (ssize_t)strlen(buf + i) + 1;
	}
	if (!args[2])
		return false;
	const char *base = strrchr(args[0], '/');
	base = base ? base + 1 : args[0];
	return strcmp(base, RELAY_NAME) == 0 && strcmp(args[1], "--log") == 0 && strcmp(args[2], log_path) == 0 &&
	       bg_proc_alive(pid);
}

int bg_vmm_relay_find(pid_t **pids, size_t *count, const char *log_path)
{
	*pids = NULL;
	*count = 0;
	if (!log_path || !*log_path)
		return bg_error(BANGER_EINVALID, "relay: no log path");
	pid_t *all = NULL;
	size_t n = 0;
	int rc = bg_proc_find(&all, &n, log_path);
	if (rc)
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (is_relay_for(all[i], log_path))
			all[k++] = all[i];
	if (k == 0) {
		bg_free(all);
		all = NULL;
	}
	*pids = all;
	*count = k;
	return 0;
}

int bg_vmm_relay_stop(const char *log_path, int grace_ms)
{
	pid_t *pids = NULL;
	size_t n = 0;
	int rc = bg_vmm_relay_find(&pids, &n, log_path);
	/* A relay ends by itself once the pipe has no writer: give it the
	 * grace to drain the VMM's last words into the log, then insist. */
	for (size_t i = 0; !rc && i < n; i++)
		if (bg_vmm_wait_gone(pids[i], grace_ms) != 0) {
			banger_error_clear();
			if (is_relay_for(pids[i], log_path))
				rc = bg_vmm_terminate(pids[i], 1000);
		}
	bg_free(pids);
	return rc;
}

/* Read up to want bytes ending at the end of path into buf at the end
 * of [buf, buf + want); returns how many. */
static size_t read_end(char *buf, size_t want, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	struct stat st;
	size_t got = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		size_t take = (uint64_t)st.st_size < want ? (size_t)st.st_size : want;
		ssize_t r = pread(fd, buf + want - take, take, st.st_size - (off_t)take);
		if (r > 0 && (size_t)r == take)
			got = take;
	}
	close(fd);
	return got;
}

size_t bg_vmm_console_tail(char *buf, size_t want, const char *log_path)
{
	if (!buf || !want || !log_path)
		return 0;
	/* The log's end goes to the end of buf, what came before the last
	 * rotation right before it; then all of it moves to the front. */
	size_t got = read_end(buf, want, log_path);
	size_t more = 0;
	if (got < want) {
		char *older = bg_sprintf("%s.1", log_path);
		more = older ? read_end(buf, want - got, older) : 0;
		bg_free(older);
	}
	size_t start = want - got - more;
	if (start)
		memmove(buf, buf + start, got + more);
	return got + more;
}
