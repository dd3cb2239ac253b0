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

/* The program must be an absolute path to an executable, and the log a
 * file that can be opened.  The log is opened here first so that a path
 * that cannot be opened is reported as such (the spawned child's failure
 * to open it is not reported back where posix_spawn runs as a plain
 * fork: valgrind). */
static int check_program(const char *const argv[], const char *log_path)
{
	if (!argv || !argv[0] || argv[0][0] != '/' || !log_path)
		return bg_error(BANGER_EINVALID, "spawn: need an absolute program path and a log path");

	if (access(argv[0], X_OK) != 0)
		return bg_error_os(errno == ENOENT || errno == EACCES ? BANGER_EUNSUPPORTED : BANGER_EIO, errno,
				   "spawn: %s is not an executable", argv[0]);
	int lfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (lfd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "spawn: console log %s", log_path);
	close(lfd);
	return 0;
}

/* Everything the intermediate needs, made before the fork: the VMM's and
 * the relay's file actions, the attributes both are spawned with, and
 * with a bound the console pipe and the relay's argv. */
typedef struct {
	const char *const *argv;
	const char *log_path;
	uint64_t log_max;
	posix_spawn_file_actions_t fa, rfa;
	posix_spawnattr_t attr;
	bool fa_ok, rfa_ok, attr_ok;
	int con[2]; /* the console pipe: VMM -> relay */
	char *relay, *max_arg;
	const char *rargv[6];
} spawn_plan;

/* The relay's argv and the console pipe. */
static int plan_relay(spawn_plan *s)
{
	int rc;
	if ((rc = bg_vmm_relay_program(&s->relay)))
		return rc;
	if (!(s->max_arg = bg_sprintf("%llu", (unsigned long long)s->log_max)))
		return bg_error_oom();
	s->rargv[0] = s->relay;
	s->rargv[1] = "--log";
	s->rargv[2] = s->log_path;
	s->rargv[3] = "--max";
	s->rargv[4] = s->max_arg;
	if (pipe2(s->con, O_CLOEXEC) != 0)
		return bg_error_os(BANGER_EIO, errno, "spawn: console pipe");
	/* Room for bursts while the relay is scheduled out (best effort). */
	(void)fcntl(s->con[1], F_SETPIPE_SZ, 1 << 20);
	return 0;
}

/* The file actions and attributes of the VMM and of the relay. */
static int plan_actions(spawn_plan *s)
{
	int e;
	if ((e = posix_spawn_file_actions_init(&s->fa)) != 0)
		return bg_error_os(BANGER_ENOMEM, e, "spawn: file actions");
	s->fa_ok = true;
	if ((e = posix_spawn_file_actions_init(&s->rfa)) != 0)
		return bg_error_os(BANGER_ENOMEM, e, "spawn: file actions");
	s->rfa_ok = true;
	if ((e = posix_spawnattr_init(&s->attr)) != 0)
		return bg_error_os(BANGER_ENOMEM, e, "spawn: attributes");
	s->attr_ok = true;
	/* stdin /dev/null, stdout and stderr appended to the log (or into the
	 * console pipe), nothing else: addclosefrom_np covers descriptors the
	 * host program opened without O_CLOEXEC.  With a relay, SIGPIPE stays
	 * ignored (the intermediate ignores it): a relay that died must cost
	 * the VMM its console, not its life. */
	sigset_t none, dfl;
	sigemptyset(&none);
	sigfillset(&dfl);
	if (s->log_max)
		sigdelset(&dfl, SIGPIPE);
	if (s->log_max)
		e = posix_spawn_file_actions_adddup2(&s->fa, s->con[1], 1);
	else
		e = posix_spawn_file_actions_addopen(&s->fa, 1, s->log_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (e || (e = posix_spawn_file_actions_adddup2(&s->fa, 1, 2)) ||
	    (e = posix_spawn_file_actions_addopen(&s->fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (e = posix_spawn_file_actions_addclosefrom_np(&s->fa, 3)) ||
	    (e = posix_spawnattr_setsigmask(&s->attr, &none)) ||
	    (e = posix_spawnattr_setsigdefault(&s->attr, &dfl)) ||
	    (e = posix_spawnattr_setflags(&s->attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
							    POSIX_SPAWN_SETSIGDEF)))
		return bg_error_os(e == ENOMEM ? BANGER_ENOMEM : BANGER_EIO, e, "spawn: preparing %s", s->argv[0]);
	/* The relay: stdin the pipe, stdout and stderr /dev/null. */
	if (s->log_max && ((e = posix_spawn_file_actions_adddup2(&s->rfa, s->con[0], 0)) ||
			   (e = posix_spawn_file_actions_addopen(&s->rfa, 1, "/dev/null", O_WRONLY, 0)) ||
			   (e = posix_spawn_file_actions_adddup2(&s->rfa, 1, 2)) ||
			   (e = posix_spawn_file_actions_addclosefrom_np(&s->rfa, 3))))
		return bg_error_os(e == ENOMEM ? BANGER_ENOMEM : BANGER_EIO, e, "spawn: preparing %s", s->relay);
	return 0;
}

static void plan_free(spawn_plan *s)
{
	if (s->fa_ok)
		posix_spawn_file_actions_destroy(&s->fa);
	if (s->rfa_ok)
		posix_spawn_file_actions_destroy(&s->rfa);
	if (s->attr_ok)
		posix_spawnattr_destroy(&s->attr);
	/* Only the VMM and the relay hold the console pipe now. */
	if (s->con[0] >= 0)
		close(s->con[0]);
	if (s->con[1] >= 0)
		close(s->con[1]);
	bg_free(s->relay);
	bg_free(s->max_arg);
}

/* The intermediate: async-signal-safe calls only.  It spawns the relay
 * (when there is one), then the VMM, reports both on pfd[1] and exits. */
static void run_intermediate(const spawn_plan *s, const int pfd[2]) __attribute__((noreturn));
static void run_intermediate(const spawn_plan *s, const int pfd[2])
{
	struct spawn_report r = { 0, 0, 0, 0 };
	close(pfd[0]);
	/* The VMM makes its API, vsock and QMP sockets (and any file of its
	 * own) with this umask: nobody but us may connect to them. */
	umask(077);
	if (s->log_max) {
		r.relay_err = posix_spawn(&r.relay_pid, s->rargv[0], &s->rfa, &s->attr, (char *const *)s->rargv,
					  environ);
		struct sigaction ign;
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		(void)sigaction(SIGPIPE, &ign, NULL);
	}
	if (!r.relay_err)
		r.err = posix_spawn(&r.pid, s->argv[0], &s->fa, &s->attr, (char *const *)s->argv, environ);
	ssize_t w;
	do
		w = write(pfd[1], &r, sizeof(r));
	while (w < 0 && errno == EINTR);
	_exit(0);
}

/* Fork the intermediate, read its report and reap it; *pid: the VMM. */
static int spawn_through_intermediate(const spawn_plan *s, pid_t *pid)
{
	int pfd[2] = { -1, -1 };
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return bg_error_os(BANGER_EIO, errno, "spawn: pipe");

	pid_t mid = fork_intermediate();
	if (mid < 0) {
		int rc = bg_error_os(BANGER_EIO, errno, "spawn: fork");
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (mid == 0)
		run_intermediate(s, pfd);

	close(pfd[1]);
	struct spawn_report r = { 0, 0, 0, 0 };
	int rc = read_report(pfd[0], &r, 10000);
	/* Reap the intermediate.  ECHILD: the host ignores SIGCHLD or reaped
	 * it for us, which is fine. */
	int ws;
	while (waitpid(mid, &ws, 0) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (rc)
		return rc;
	/* A relay whose VMM did not start sees the pipe close (in plan_free)
	 * and ends. */
	if (r.relay_err != 0)
		return bg_error_os(bg_code_from_errno(r.relay_err), r.relay_err, "spawn the console relay %s",
				   s->relay);
	if (r.err != 0)
		return bg_error_os(bg_code_from_errno(r.err), r.err, "spawn %s (console log %s)", s->argv[0],
				   s->log_path);
	*pid = r.pid;
	return 0;
}

/* With a bound, the VMM's stdout and stderr are a pipe whose other end is
 * the console relay (relay.c), spawned the same way just before it: the
 * VMM never holds the log file, and the relay keeps it bounded. */
int bg_vmm_spawn_relayed(pid_t *pid, const char *const argv[], const char *log_path, uint64_t log_max)
{
	*pid = 0;
	int rc = check_program(argv, log_path);
	if (rc)
		return rc;
	spawn_plan s;
	memset(&s, 0, sizeof(s));
	s.argv = argv;
	s.log_path = log_path;
	s.log_max = log_max;
	s.con[0] = s.con[1] = -1;
	if ((!log_max || (rc = plan_relay(&s)) == 0) && (rc = plan_actions(&s)) == 0)
		rc = spawn_through_intermediate(&s, pid);
	plan_free(&s);
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
