/* Running helper programs (mkfs.ext4, nft, ...) with posix_spawn: safe in
 * a multi-threaded host program, no inherited descriptors, a deadline. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *bg_which(const char *name)
{
	errno = 0;
	if (strchr(name, '/')) {
		if (access(name, X_OK) != 0)
			return NULL;
		char *r = bg_strdup(name);
		if (!r)
			errno = ENOMEM;
		return r;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		if (n > 0) {
			char *cand = bg_sprintf("%.*s/%s", (int)n, path, name);
			if (!cand) {
				errno = ENOMEM;
				return NULL;
			}
			struct stat st;
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
				return cand;
			bg_free(cand);
		}
		path += n;
		if (*path == ':')
			path++;
	}
	errno = ENOENT;
	return NULL;
}

static int drain(int fd, bg_buf *b)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	if (n > 0) {
		if (b && b->len < (16u << 20)) /* keep at most 16 MiB */
			bg_buf_put(b, tmp, (size_t)n);
		return 1;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	return 0; /* EOF or error: stop watching */
}

/* Drain the child's stdout and stderr pipes until both close, then reap
 * it; SIGKILL at the deadline. */
int bg_run_collect(int *status, char **out, char **err, pid_t pid, int out_fd, int err_fd, const char *name,
		   int timeout_ms)
{
	bg_buf bo = BG_BUF_INIT, be = BG_BUF_INIT;
	int rc = 0;
	if (out)
		*out = NULL;
	if (err)
		*err = NULL;
	int64_t deadline = timeout_ms < 0 ? -1 : bg_now_ms() + timeout_ms;
	bool open_o = true, open_e = true, timed_out = false;
	while (open_o || open_e) {
		struct pollfd p[2] = { { out_fd, POLLIN, 0 }, { err_fd, POLLIN, 0 } };
		if (!open_o)
			p[0].fd = -1;
		if (!open_e)
			p[1].fd = -1;
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - bg_now_ms();
			if (left <= 0) {
				timed_out = true;
				break;
			}
			wait = (int)left;
		}
		int n = poll(p, 2, wait);
		if (n < 0 && errno != EINTR) {
			rc = bg_error_os(BANGER_EIO, errno, "poll");
			break;
		}
		if (n <= 0)
			continue;
		if (open_o && p[0].revents)
			open_o = drain(out_fd, out ? &bo : NULL);
		if (open_e && p[1].revents)
			open_e = drain(err_fd, &be);
	}
	if (timed_out || rc)
		kill(pid, SIGKILL);
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (timed_out && !rc)
		rc = bg_error(BANGER_ETIMEOUT, "%s did not finish within %d ms", name, timeout_ms);
	/* Ctrl-C reaches the whole foreground process group: the user
	 * stopping the operation, not the program failing */
	if (!rc && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGINT)
		rc = bg_error(BANGER_ECANCELLED, "cancelled: %s was interrupted (SIGINT)", name);
	if (!rc && (bo.oom || be.oom))
		rc = bg_error_oom();
	if (!rc && status)
		*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	if (!rc && out && !(*out = bg_buf_detach(&bo)))
		rc = bg_error_oom();
	if (!rc && err && !(*err = bg_buf_detach(&be)))
		rc = bg_error_oom();
	if (rc && out && *out) {
		bg_free(*out);
		*out = NULL;
	}
	bg_buf_free(&bo);
	bg_buf_free(&be);
	return rc;
}

int bg_run(int *status, char **out, char **err, const char *const argv[], int timeout_ms)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int rc = 0;
	pid_t pid = -1;

	if (out)
		*out = NULL;
	if (err)
		*err = NULL;
	/* Look the program up first: where posix_spawn runs as a plain fork
	 * (valgrind, some emulators) an exec failure is not reported back
	 * and would read as the program exiting 127. */
	char *found = bg_which(argv[0]);
	if (!found)
		return errno == ENOMEM ? bg_error_oom()
				       : bg_error_os(BANGER_EUNSUPPORTED, ENOENT, "run %s", argv[0]);
	bg_free(found);
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "pipe");
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawnattr_init(&attr);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int e = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (e != 0) {
		rc = bg_error_os(e == ENOENT ? BANGER_EUNSUPPORTED : BANGER_EIO, e, "run %s", argv[0]);
		goto out;
	}

	rc = bg_run_collect(status, out, err, pid, po[0], pe[0], argv[0], timeout_ms);
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return rc;
}

int bg_run_checked(const char *const argv[], int timeout_ms)
{
	int status = 0;
	char *err = NULL;
	int rc = bg_run(&status, NULL, &err, argv, timeout_ms);
	if (rc == 0 && status != 0) {
		const char *msg = err ? err : "";
		size_t n = strcspn(msg, "\n");
		rc = bg_error(BANGER_ERROR, "%s exited with status %d%s%.*s", argv[0], status,
			      n ? ": " : "", (int)n, msg);
	}
	bg_free(err);
	return rc;
}
