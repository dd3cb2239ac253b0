/* Starting a VMM detached, waiting for its socket, watching it die.
 *
 * The VMM must outlive the banger process and must never become its
 * zombie.  So the caller forks an intermediate child which posix_spawns
 * the VMM in a new session and exits at once; the caller reaps the
 * intermediate and the VMM is reparented to init (or the nearest
 * subreaper).  Everything the intermediate needs (argv, file actions,
 * attributes, the pipe for the pid) is prepared before the fork, so the
 * child only makes async-signal-safe system calls: posix_spawn (clone +
 * exec in glibc), write and _exit.  The host program may be threaded. */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct spawn_report {
	int err;   /* posix_spawn's error, 0 on success */
	pid_t pid; /* the VMM */
	int relay_err;   /* the console relay's, when there is one */
	pid_t relay_pid;
};

static pid_t fork_intermediate(void)
{
	/* _Fork runs no atfork handlers (glibc >= 2.34): nothing of the host
	 * program's runs in the child. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	return _Fork();
#else
	return fork();
#endif
}

static int read_report(int fd, struct spawn_report *r, int timeout_ms)
{
	size_t got = 0;
	int64_t deadline = bg_now_ms() + timeout_ms;
	while (got < sizeof(*r)) {
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			return bg_error(BANGER_ETIMEOUT, "spawn: no report from the intermediate process");
		struct pollfd p = { fd, POLLIN, 0 };
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bg_error_os(BANGER_EIO, errno, "spawn: poll");
		if (n == 0)
			continue;
		ssize_t k = read(fd, (char *)r + got, sizeof(*r) - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return bg_error_os(BANGER_EIO, errno, "spawn: read");
		if (k == 0)
			return bg_error(BANGER_EIO, "spawn: the intermediate process died before reporting");
		got += (size_t)k;
	}
	return 0;
}

int bg_vmm_spawn_detached(pid_t *pid, const char *const argv[], const char *log_path)
{
	return bg_vmm_spawn_relayed(pid, argv, log_path, 0);
}

/* With a bound, the VMM's stdout and stderr are a pipe whose other end is
 * the console relay (relay.c), spawned the same way just before it: the
 * VMM never holds the log file, and the relay keeps it bounded. */
int bg_vmm_spawn_relayed(pid_t *pid, const char *const argv[], const char *log_path, uint64_t log_max)
{
	*pid = 0;
	if (!argv || !argv[0] || argv[0][0] != '/' || !log_path)
		return bg_error(BANGER_EINVALID, "spawn: need an absolute program path and a log path");

	if (access(argv[0], X_OK) != 0)
		return bg_error_os(errno == ENOENT || errno == EACCES ? BANGER_EUNSUPPORTED : BANGER_EIO, errno,
				   "spawn: %s is not an executable", argv[0]);
	/* The log is opened here first so that a path that cannot be opened is
	 * reported as such (the spawned child's failure to open it is not
	 * reported back where posix_spawn runs as a plain fork: valgrind). */
	int lfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (lfd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "spawn: console log %s", log_path);
	close(lfd);

	posix_spawn_file_actions_t fa, rfa;
	posix_spawnattr_t attr;
	int e, rc = 0;
	int pfd[2] = { -1, -1 };
	int con[2] = { -1, -1 }; /* the console pipe: VMM -> relay */
	char *relay = NULL, *max_arg = NULL;
	const char *rargv[6] = { NULL };

	if (log_max) {
		if ((rc = bg_vmm_relay_program(&relay)))
			return rc;
		if (!(max_arg = bg_sprintf("%llu", (unsigned long long)log_max))) {
			bg_free(relay);
			return bg_error_oom();
		}
		rargv[0] = relay;
		rargv[1] = "--log";
		rargv[2] = log_path;
		rargv[3] = "--max";
		rargv[4] = max_arg;
		if (pipe2(con, O_CLOEXEC) != 0) {
			bg_free(relay);
			bg_free(max_arg);
			return bg_error_os(BANGER_EIO, errno, "spawn: console pipe");
		}
		/* Room for bursts while the relay is scheduled out (best effort). */
		(void)fcntl(con[1], F_SETPIPE_SZ, 1 << 20);
	}
	if ((e = posix_spawn_file_actions_init(&fa)) != 0) {
		rc = bg_error_os(BANGER_ENOMEM, e, "spawn: file actions");
		goto out_early;
	}
	if ((e = posix_spawn_file_actions_init(&rfa)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		rc = bg_error_os(BANGER_ENOMEM, e, "spawn: file actions");
		goto out_early;
	}
	if ((e = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		posix_spawn_file_actions_destroy(&rfa);
		rc = bg_error_os(BANGER_ENOMEM, e, "spawn: attributes");
		goto out_early;
	}
	/* stdin /dev/null, stdout and stderr appended to the log (or into the
	 * console pipe), nothing else: addclosefrom_np covers descriptors the
	 * host program opened without O_CLOEXEC.  With a relay, SIGPIPE stays
	 * ignored (the intermediate ignores it): a relay that died must cost
	 * the VMM its console, not its life. */
	sigset_t none, dfl;
	sigemptyset(&none);
	sigfillset(&dfl);
	if (log_max)
		sigdelset(&dfl, SIGPIPE);
	if (log_max)
		e = posix_spawn_file_actions_adddup2(&fa, con[1], 1);
	else
		e = posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (e || (e = posix_spawn_file_actions_adddup2(&fa, 1, 2)) ||
	    (e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (e = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) ||
	    (e = posix_spawnattr_setsigmask(&attr, &none)) ||
	    (e = posix_spawnattr_setsigdefault(&attr, &dfl)) ||
	    (e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
						      POSIX_SPAWN_SETSIGDEF))) {
		rc = bg_error_os(e == ENOMEM ? BANGER_ENOMEM : BANGER_EIO, e, "spawn: preparing %s", argv[0]);
		goto out;
	}
	/* The relay: stdin the pipe, stdout and stderr /dev/null. */
	if (log_max && ((e = posix_spawn_file_actions_adddup2(&rfa, con[0], 0)) ||
			(e = posix_spawn_file_actions_addopen(&rfa, 1, "/dev/null", O_WRONLY, 0)) ||
			(e = posix_spawn_file_actions_adddup2(&rfa, 1, 2)) ||
			(e = posix_spawn_file_actions_addclosefrom_np(&rfa, 3)))) {
		rc = bg_error_os(e == ENOMEM ? BANGER_ENOMEM : BANGER_EIO, e, "spawn: preparing %s", relay);
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "spawn: pipe");
		goto out;
	}

	pid_t mid = fork_intermediate();
	if (mid < 0) {
		rc = bg_error_os(BANGER_EIO, errno, "spawn: fork");
		goto out;
	}
	if (mid == 0) {
		/* Intermediate: async-signal-safe calls only. */
		struct spawn_report r = { 0, 0, 0, 0 };
		close(pfd[0]);
		/* The VMM makes its API, vsock and QMP sockets (and any file of its
		 * own) with this umask: nobody but us may connect to them. */
		umask(077);
		if (log_max) {
			r.relay_err = posix_spawn(&r.relay_pid, rargv[0], &rfa, &attr, (char *const *)rargv, environ);
			struct sigaction ign;
			memset(&ign, 0, sizeof(ign));
			ign.sa_handler = SIG_IGN;
			(void)sigaction(SIGPIPE, &ign, NULL);
		}
		if (!r.relay_err)
			r.err = posix_spawn(&r.pid, argv[0], &fa, &attr, (char *const *)argv, environ);
		ssize_t w;
		do
			w = write(pfd[1], &r, sizeof(r));
		while (w < 0 && errno == EINTR);
		_exit(0);
	}

	close(pfd[1]);
	pfd[1] = -1;
	struct spawn_report r = { 0, 0, 0, 0 };
	rc = read_report(pfd[0], &r, 10000);
	/* Reap the intermediate.  ECHILD: the host ignores SIGCHLD or reaped
	 * it for us, which is fine. */
	int ws;
	while (waitpid(mid, &ws, 0) < 0 && errno == EINTR)
		;
	if (rc)
		goto out;
	/* A relay whose VMM did not start sees the pipe close (below) and ends. */
	if (r.relay_err != 0) {
		rc = bg_error_os(bg_code_from_errno(r.relay_err), r.relay_err, "spawn the console relay %s", relay);
		goto out;
	}
	if (r.err != 0) {
		rc = bg_error_os(bg_code_from_errno(r.err), r.err, "spawn %s (console log %s)", argv[0], log_path);
		goto out;
	}
	*pid = r.pid;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawn_file_actions_destroy(&rfa);
	posix_spawnattr_destroy(&attr);
out_early:
	/* Only the VMM and the relay hold the console pipe now. */
	if (con[0] >= 0)
		close(con[0]);
	if (con[1] >= 0)
		close(con[1]);
	bg_free(relay);
	bg_free(max_arg);
	return rc;
}

/* ---- waiting ---- */

static bool gone(pid_t pid)
{
	if (pid <= 0)
		return true;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	if (!bg_proc_alive(pid)) {
		/* A zombie: reap it if it happens to be ours (we are init or a
		 * subreaper); either way it no longer runs. */
		int ws;
		(void)waitpid(pid, &ws, WNOHANG);
		return true;
	}
	return false;
}

int bg_vmm_wait_gone(pid_t pid, int timeout_ms)
{
	int64_t deadline = bg_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	/* A pidfd becomes readable when the process exits, whoever its parent
	 * is; without one (old kernels), poll /proc. */
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		if (gone(pid)) {
			if (pfd >= 0)
				close(pfd);
			return 0;
		}
		int64_t left = deadline - bg_now_ms();
		if (left <= 0)
			break;
		int step = left > 50 ? 50 : (int)left;
		if (pfd >= 0) {
			struct pollfd p = { pfd, POLLIN, 0 };
			(void)poll(&p, 1, step);
		} else {
			bg_sleep_ms(step < 10 ? step : 10);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return bg_error(BANGER_ETIMEOUT, "process %d still running after %d ms", (int)pid, timeout_ms);
}

void bg_vmm_log_tail(char *out, size_t outlen, const char *log_path)
{
	if (!outlen)
		return;
	out[0] = '\0';
	if (!log_path)
		return;
	char buf[512];
	ssize_t n = (ssize_t)bg_vmm_console_tail(buf, sizeof(buf) - 1, log_path);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* Trim trailing blank lines, keep the last two lines. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *start = buf;
	int lines = 0;
	for (char *p = buf + n; p > buf; p--) {
		if (p[-1] == '\n' && ++lines == 2) {
			start = p;
			break;
		}
	}
	for (char *p = start; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	/* the guest wrote it: its escape sequences must not reach a terminal */
	bg_visible_into(out, outlen, start, 0);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

int bg_vmm_wait_socket(const char *path, pid_t pid, const char *log_path, int timeout_ms)
{
	int64_t deadline = bg_now_ms() + timeout_ms;
	int last = 0;
	for (;;) {
		if (try_connect(path) == 0)
			return 0;
		last = errno;
		if (last == ENAMETOOLONG)
			return bg_error_os(BANGER_EINVALID, last, "socket path %s", path);
		if (pid > 0 && gone(pid)) {
			char tail[300];
			bg_vmm_log_tail(tail, sizeof(tail), log_path);
			return bg_error(BANGER_EVMM, "the VMM (pid %d) exited before its socket %s appeared%s%s",
					(int)pid, path, *tail ? "; console log ends with: " : "", tail);
		}
		if (bg_now_ms() >= deadline)
			break;
		bg_sleep_ms(10);
	}
	return bg_error_os(BANGER_ETIMEOUT, last, "the VMM's socket %s did not accept connections within %d ms",
			   path, timeout_ms);
}

int bg_vmm_unlink_socket(const char *path)
{
	if (!path || !*path)
		return 0;
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return bg_error_os(BANGER_EIO, errno, "stat %s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return bg_error(BANGER_EEXISTS, "%s exists and is not a socket; refusing to remove it", path);
	if (unlink(path) != 0 && errno != ENOENT)
		return bg_error_os(BANGER_EIO, errno, "remove stale socket %s", path);
	return 0;
}

/* ---- termination ---- */

static int signal_pid(int pidfd, pid_t pid, int sig)
{
	if (pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
	return kill(pid, sig);
}

/* Terminate pid: SIGTERM, grace, SIGKILL.  When needle is set, only a
 * process whose command line still contains it is signalled; a pidfd
 * taken after that check pins the identity against pid reuse. */
static int terminate(pid_t pid, const char *needle, int grace_ms)
{
	if (pid <= 0 || gone(pid))
		return 0;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (needle && !bg_proc_cmdline_has(pid, needle)) {
		if (pidfd >= 0)
			close(pidfd);
		return 0; /* someone else's process now, or already a zombie */
	}
	int rc = 0;
	if (signal_pid(pidfd, pid, SIGTERM) != 0 && errno != ESRCH) {
		rc = bg_error_os(errno == EPERM ? BANGER_EPERM : BANGER_EIO, errno, "SIGTERM %d", (int)pid);
		goto out;
	}
	if (bg_vmm_wait_gone(pid, grace_ms) == 0)
		goto out;
	if (signal_pid(pidfd, pid, SIGKILL) != 0 && errno != ESRCH) {
		rc = bg_error_os(errno == EPERM ? BANGER_EPERM : BANGER_EIO, errno, "SIGKILL %d", (int)pid);
		goto out;
	}
	rc = bg_vmm_wait_gone(pid, 10000);
	if (rc)
		bg_error_prefix("after SIGKILL");
out:
	if (pidfd >= 0)
		close(pidfd);
	return rc;
}

int bg_vmm_terminate(pid_t pid, int grace_ms)
{
	return terminate(pid, NULL, grace_ms);
}

int bg_vmm_kill(const bg_vm_spec *spec, pid_t pid, int grace_ms)
{
	if (!spec || !spec->api_sock)
		return bg_error(BANGER_EINVALID, "kill: the spec names no api socket");
	int rc = terminate(pid, spec->api_sock, grace_ms);
	if (rc == 0)
		(void)bg_vmm_unlink_socket(spec->api_sock);
	return rc;
}

bool bg_vmm_alive(const char *api_sock, pid_t pid)
{
	return api_sock && bg_proc_cmdline_has(pid, api_sock);
}

int bg_vmm_find(pid_t *pid, const char *api_sock)
{
	*pid = 0;
	if (!api_sock || !*api_sock)
		return bg_error(BANGER_EINVALID, "find: no api socket");
	pid_t *pids = NULL;
	size_t n = 0;
	int rc = bg_proc_find(&pids, &n, api_sock);
	if (rc)
		return rc;
	if (n > 1)
		rc = bg_error(BANGER_EBUSY, "%zu processes name %s on their command line", n, api_sock);
	else if (n == 1)
		*pid = pids[0];
	bg_free(pids);
	return rc;
}
