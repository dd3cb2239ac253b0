/* Running the real banger-vsock-agent in tests: on a Unix socket
 * (--unix) with a fake system root (--sysroot) that holds /proc/net/tcp,
 * /run/systemd/system and stub systemctl/poweroff programs, so nothing
 * touches the host (and reboot(2) is never called). */
#ifndef BG_TEST_AGENT_FIXTURE_H
#define BG_TEST_AGENT_FIXTURE_H

#include "helpers.h"

#include "../../libbanger/guest/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
	char *dir;
	char sock[4200];  /* where the agent listens */
	char root[4200];  /* its --sysroot */
	char log[4200];   /* its stderr */
	pid_t pid;
} agent_fx;

/* The "sshd is listening" line of /proc/net/tcp (port 22 = 0x0016, st 0A). */
#define TCP_HEADER "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
#define TCP_SSHD_LISTEN "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0\n"
#define TCP_SSH_CLIENT "   1: 0200000A:C350 0100000A:0016 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1\n"
#define TCP_OTHER_LISTEN "   2: 0100007F:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0\n"
#define TCP6_SSHD_LISTEN "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0\n"

BG_UNUSED static const char *agent_bin(void)
{
	static char path[4200];
	const char *b = getenv("BANGER_BUILD_DIR");
	snprintf(path, sizeof(path), "%s/libexec/banger/banger-vsock-agent", b ? b : ".");
	return path;
}

BG_UNUSED static void agent_fx_init(agent_fx *f)
{
	memset(f, 0, sizeof(*f));
	f->dir = test_tmpdir();
	snprintf(f->sock, sizeof(f->sock), "%s/agent.sock", f->dir);
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/agent.log", f->dir);
	assert_int_equal(mkdir(f->root, 0755), 0);
}

/* Write <root>/<rel> (parents created). */
BG_UNUSED static void agent_root_file(agent_fx *f, const char *rel, const char *content, mode_t mode)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	assert_int_equal(bg_mkdir_p(path, 0755), 0);
	*slash = '/';
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	size_t len = strlen(content);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

BG_UNUSED static void agent_root_dir(agent_fx *f, const char *rel)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	assert_int_equal(bg_mkdir_p(path, 0755), 0);
}

BG_UNUSED static int agent_dial(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Start the agent on sock (NULL: f->sock) with extra arguments (NULL-
 * terminated, may be NULL) and wait until it accepts connections. */
BG_UNUSED static void agent_start_at(agent_fx *f, const char *sock, int timeout_ms, const char *const *extra)
{
	if (!sock)
		sock = f->sock;
	char tmo[32];
	snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
	const char *argv[32] = { agent_bin(), "--unix", sock, "--sysroot", f->root, "--timeout-ms", tmo };
	size_t n = 7;
	for (size_t i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int rc = posix_spawn(&f->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(rc, 0);
	for (int i = 0; i < 500; i++) {
		int fd = agent_dial(sock);
		if (fd >= 0) {
			close(fd);
			return;
		}
		int st;
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = 0;
			fail_msg("the agent exited at start (status %d)", st);
		}
		usleep(10000);
	}
	fail_msg("the agent did not listen on %s", sock);
}

BG_UNUSED static void agent_start(agent_fx *f, int timeout_ms)
{
	agent_start_at(f, NULL, timeout_ms, NULL);
}

BG_UNUSED static bool agent_running(agent_fx *f)
{
	int st;
	return f->pid > 0 && waitpid(f->pid, &st, WNOHANG) == 0;
}

BG_UNUSED static void agent_stop(agent_fx *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		int st;
		waitpid(f->pid, &st, 0);
		f->pid = 0;
	}
}

BG_UNUSED static void agent_fx_free(agent_fx *f)
{
	agent_stop(f);
	test_rmrf(f->dir);
	free(f->dir);
	f->dir = NULL;
}

/* One request on fd, which must answer; the reply is compared. */
BG_UNUSED static void agent_expect(int fd, const char *cmd, const char *want)
{
	char *r = NULL;
	int rc = bg_agent_request(&r, fd, cmd, 5000);
	if (rc)
		fail_msg("%s: %s", cmd, banger_error_last()->message);
	if (strcmp(r, want) != 0)
		fail_msg("%s answered \"%s\", expected \"%s\"", cmd, r, want);
	bg_free(r);
}

/* Read everything until EOF (or deadline_ms); returns the bytes (free). */
BG_UNUSED static char *read_until_eof(int fd, int deadline_ms, bool *eof)
{
	char *buf = calloc(1, 65536);
	size_t len = 0;
	*eof = false;
	int64_t end = bg_now_ms() + deadline_ms;
	while (len < 65535) {
		int64_t left = end - bg_now_ms();
		if (left <= 0)
			break;
		struct timeval tv = { left / 1000, (left % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = recv(fd, buf + len, 65535 - len, 0);
		if (n == 0) {
			*eof = true;
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET)
				*eof = true;
			break;
		}
		len += (size_t)n;
	}
	return buf;
}

/* Wait until path exists and is non-empty (stub programs record there). */
BG_UNUSED static bool wait_for_file(const char *path, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		struct stat st;
		if (stat(path, &st) == 0 && st.st_size > 0)
			return true;
		usleep(10000);
	}
	return false;
}

#endif
