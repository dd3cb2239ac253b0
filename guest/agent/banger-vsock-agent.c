/* SPDX-License-Identifier: Apache-2.0 */
/*
 * banger-vsock-agent: the small agent banger installs in its guests.
 *
 * It listens on a vsock port (52 by default) and answers a line protocol
 * (docs/vsock-agent.md in the banger source tree; the constants are
 * guest/include/banger-guest/agent.h, which the host library shares):
 *
 *   VERSION   ->  OK banger-vsock-agent 1
 *   PING      ->  PONG
 *   READY     ->  OK systemd=<state> sshd=<listening|not-listening>
 *   POWEROFF  ->  OK, then the guest powers off
 *   anything else -> ERR unknown command
 *
 * Built as a static binary with nothing but libc, so it runs in any image.
 * One process, one poll() loop, several connections at a time; every
 * connection has a deadline, so a stalled client never holds a slot for
 * long and never blocks the listener.
 *
 * Test hooks: --unix PATH listens on a Unix socket instead of vsock, and
 * --sysroot DIR reads /proc/net/tcp{,6}, /run/systemd/system and the
 * systemctl/poweroff programs under DIR (and never calls reboot(2)).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The contract with the host: port, protocol, commands, replies. */
#include "../include/banger-guest/agent.h"

#define MAX_CLIENTS 16
#define DEFAULT_TIMEOUT_MS 10000  /* per connection: a full line within this */
#define SYSTEMCTL_TIMEOUT_MS 3000 /* systemctl is-system-running */
#define POWEROFF_TIMEOUT_MS 15000 /* each poweroff program */
#define LISTEN_RETRY_S 30         /* vsock may appear a little after us */
#define SSH_PORT 22
#define TCP_LISTEN 0x0A           /* TCP_LISTEN in /proc/net/tcp's "st" */

typedef struct {
	int fd;
	size_t len;
	int64_t deadline;
	char buf[BG_AGENT_REQUEST_MAX];
} client;

static struct {
	unsigned port;
	const char *unix_path;
	const char *sysroot; /* "" unless testing */
	int timeout_ms;
} opt = { BG_AGENT_PORT, NULL, "", DEFAULT_TIMEOUT_MS };

static client clients[MAX_CLIENTS];

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line, so concurrent output never interleaves */
	dprintf(STDERR_FILENO, "%s: %s\n", BG_AGENT_NAME, line);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* sysroot-relative path; false when it does not fit */
static bool rooted(char *out, size_t n, const char *path)
{
	int len = snprintf(out, n, "%s%s", opt.sysroot, path);
	return len > 0 && (size_t)len < n;
}

static bool is_dir(const char *path)
{
	char p[PATH_MAX];
	struct stat st;
	return rooted(p, sizeof(p), path) && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* First executable of a NULL-terminated list, under the sysroot. */
static bool find_program(char *out, size_t n, const char *const *candidates)
{
	for (size_t i = 0; candidates[i]; i++) {
		struct stat st;
		if (rooted(out, n, candidates[i]) && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* ---- running a program with a deadline ---- */

/* Run path with argv, stdin and stderr on /dev/null, stdout captured into
 * out (NUL-terminated, may be NULL).  Returns the exit status (0..255),
 * 128+signal, or -1 when it could not run or missed the deadline (then it
 * is killed with its process group). */
static int run_program(const char *path, char *const argv[], char *out, size_t outlen, int timeout_ms)
{
	int p[2];
	if (out && outlen)
		out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) != 0) {
		logmsg("pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		logmsg("fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		/* the agent is single-threaded: anything goes until exec */
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDERR_FILENO);
		}
		dup2(p[1], STDOUT_FILENO);
		char *const envp[] = { (char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				       (char *)"LC_ALL=C", (char *)"SYSTEMD_PAGER=", NULL };
		execve(path, argv, envp);
		_exit(127);
	}
	close(p[1]);
	int64_t deadline = now_ms() + timeout_ms;
	size_t got = 0;
	bool timed_out = false;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pf = { p[0], POLLIN, 0 };
		int r = poll(&pf, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue; /* the deadline check above ends it */
		char tmp[256];
		ssize_t n = read(p[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && outlen > 1) {
			size_t take = (size_t)n;
			if (take > outlen - 1 - got)
				take = outlen - 1 - got;
			memcpy(out + got, tmp, take);
			got += take;
			out[got] = '\0';
		}
	}
	close(p[0]);
	int status = 0;
	while (!timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			logmsg("waitpid: %s", strerror(errno));
			return -1;
		}
		if (now_ms() >= deadline)
			timed_out = true;
		else
			sleep_ms(10);
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		logmsg("%s did not finish within %d ms; killed", path, timeout_ms);
		return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* ---- READY ---- */

static const char *const SYSTEMCTL[] = { "/usr/bin/systemctl", "/bin/systemctl", "/usr/sbin/systemctl",
					  "/sbin/systemctl", NULL };

/* "running", "starting", "degraded", ... from systemctl is-system-running;
 * "absent" when systemd is not the init; "unknown" when it cannot say. */
static void systemd_state(char *out, size_t n)
{
	snprintf(out, n, "unknown");
	if (!is_dir("/run/systemd/system")) {
		snprintf(out, n, "absent");
		return;
	}
	char prog[PATH_MAX];
	if (!find_program(prog, sizeof(prog), SYSTEMCTL))
		return;
	char text[128];
	char *const argv[] = { (char *)"systemctl", (char *)"is-system-running", NULL };
	/* non-zero exit means "not running" but the word is still printed */
	if (run_program(prog, argv, text, sizeof(text), SYSTEMCTL_TIMEOUT_MS) < 0)
		return;
	size_t len = strspn(text, "abcdefghijklmnopqrstuvwxyz-");
	if (len == 0 || len >= n || len > 31)
		return;
	memcpy(out, text, len);
	out[len] = '\0';
}

/* Is something listening on TCP port 22 (any address, IPv4 or IPv6)? */
static bool sshd_listening(void)
{
	const char *files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[PATH_MAX];
		if (!rooted(path, sizeof(path), files[i]))
			continue;
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		char line[512];
		bool found = false;
		/* "  sl  local_address rem_address   st ..." then one socket a line:
		 * "   0: 00000000:0016 00000000:0000 0A ..." (ports in hex) */
		while (!found && fgets(line, sizeof(line), f)) {
			unsigned port, st;
			if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &port, &st) == 2 &&
			    port == SSH_PORT && st == TCP_LISTEN)
				found = true;
		}
		fclose(f);
		if (found)
			return true;
	}
	return false;
}

/* ---- POWEROFF ---- */

static bool try_program(const char *const *candidates, char *const argv[])
{
	char prog[PATH_MAX];
	if (!find_program(prog, sizeof(prog), candidates))
		return false;
	logmsg("poweroff: running %s", prog);
	int rc = run_program(prog, argv, NULL, 0, POWEROFF_TIMEOUT_MS);
	if (rc == 0)
		return true;
	logmsg("poweroff: %s failed (%d)", prog, rc);
	return false;
}

static void power_off(void)
{
	static const char *const POWEROFF[] = { "/usr/sbin/poweroff", "/sbin/poweroff", "/usr/bin/poweroff",
						"/bin/poweroff", NULL };
	char *const sc_argv[] = { (char *)"systemctl", (char *)"poweroff", NULL };
	char *const po_argv[] = { (char *)"poweroff", NULL };
	if (is_dir("/run/systemd/system") && try_program(SYSTEMCTL, sc_argv))
		return;
	if (try_program(POWEROFF, po_argv))
		return;
	if (opt.sysroot[0]) {
		logmsg("poweroff: nothing worked (test sysroot: no reboot(2))");
		return;
	}
	logmsg("poweroff: no poweroff program worked; calling reboot(RB_POWER_OFF)");
	sync();
	if (reboot(RB_POWER_OFF) != 0)
		logmsg("reboot(RB_POWER_OFF): %s", strerror(errno));
}

/* ---- connections ---- */

static void client_close(client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Replies are a few bytes: a peer whose socket buffer is full is not
 * reading, and is dropped rather than waited for.  false: dropped. */
static bool reply(client *c, const char *text)
{
	char line[BG_AGENT_REQUEST_MAX * 2];
	int len = snprintf(line, sizeof(line), "%s\n", text);
	ssize_t n = send(c->fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != len) {
		client_close(c);
		return false;
	}
	return true;
}

static bool is_cmd(const char *line, size_t len, const char *cmd)
{
	return len == strlen(cmd) && memcmp(line, cmd, len) == 0;
}

/* Answer one request line (without its newline).  Returns true when the
 * guest should power off now (the client is then already closed). */
static bool handle_line(client *c, const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (is_cmd(line, len, BG_AGENT_CMD_VERSION)) {
		char v[64];
		snprintf(v, sizeof(v), BG_AGENT_VERSION_PREFIX "%d", BG_AGENT_PROTOCOL);
		reply(c, v);
	} else if (is_cmd(line, len, BG_AGENT_CMD_PING)) {
		reply(c, BG_AGENT_PONG);
	} else if (is_cmd(line, len, BG_AGENT_CMD_READY)) {
		char sd[32], r[96];
		systemd_state(sd, sizeof(sd));
		snprintf(r, sizeof(r), BG_AGENT_OK " " BG_AGENT_KEY_SYSTEMD "=%s " BG_AGENT_KEY_SSHD "=%s", sd,
			 sshd_listening() ? BG_AGENT_SSHD_LISTENING : BG_AGENT_SSHD_NOT_LISTENING);
		reply(c, r);
	} else if (is_cmd(line, len, BG_AGENT_CMD_POWEROFF)) {
		logmsg("POWEROFF requested");
		reply(c, BG_AGENT_OK);
		client_close(c);
		return true;
	} else {
		reply(c, BG_AGENT_ERR " unknown command");
	}
	return false;
}

/* Read what is there and answer every complete line.  true: power off. */
static bool client_readable(client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		if (n <= 0) { /* EOF or error: the peer is gone */
			client_close(c);
			return false;
		}
		c->len += (size_t)n;
		for (;;) {
			char *nl = memchr(c->buf, '\n', c->len);
			if (!nl)
				break;
			size_t linelen = (size_t)(nl - c->buf);
			if (handle_line(c, c->buf, linelen))
				return true;
			if (c->fd < 0)
				return false;
			c->len -= linelen + 1;
			memmove(c->buf, nl + 1, c->len);
			c->deadline = now_ms() + opt.timeout_ms;
		}
		if (c->len == sizeof(c->buf)) {
			reply(c, BG_AGENT_ERR " line too long");
			client_close(c);
			return false;
		}
	}
}

static void accept_one(int listener)
{
	union {
		struct sockaddr sa;
		struct sockaddr_vm vm;
		struct sockaddr_un un;
	} peer;
	socklen_t plen = sizeof(peer);
	int fd = accept4(listener, &peer.sa, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			logmsg("accept: %s", strerror(errno));
		return;
	}
	/* Only the host may talk to us: a guest process reaching the port
	 * through vsock loopback must not be able to power the VM off. */
	if (!opt.unix_path && peer.sa.sa_family == AF_VSOCK && peer.vm.svm_cid != VMADDR_CID_HOST) {
		logmsg("refused a connection from cid %u", peer.vm.svm_cid);
		close(fd);
		return;
	}
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].len = 0;
			clients[i].deadline = now_ms() + opt.timeout_ms;
			return;
		}
	}
	(void)!send(fd, BG_AGENT_ERR " busy\n", 9, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* ---- listening ---- */

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		logmsg("--unix path too long: %s", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			logmsg("%s exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0) {
		logmsg("cannot listen on %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	logmsg("listening on unix socket %s", path);
	return fd;
}

static int listen_vsock(unsigned port)
{
	for (int attempt = 1;; attempt++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
		if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 64) == 0) {
			logmsg("listening on vsock port %u", port);
			return fd;
		}
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (attempt >= LISTEN_RETRY_S || e == EADDRINUSE || e == EACCES || e == EPERM) {
			logmsg("cannot listen on vsock port %u: %s", port, strerror(e));
			return -1;
		}
		if (attempt == 1)
			logmsg("vsock is not available yet (%s); retrying for %d s", strerror(e), LISTEN_RETRY_S);
		sleep_ms(1000);
	}
}

static void serve(int listener)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	for (;;) {
		struct pollfd pf[MAX_CLIENTS + 1];
		client *who[MAX_CLIENTS + 1];
		nfds_t n = 0;
		pf[n] = (struct pollfd){ listener, POLLIN, 0 };
		who[n++] = NULL;
		int64_t now = now_ms(), next = -1;
		for (size_t i = 0; i < MAX_CLIENTS; i++) {
			client *c = &clients[i];
			if (c->fd < 0)
				continue;
			if (now >= c->deadline) {
				reply(c, BG_AGENT_ERR " timeout");
				client_close(c);
				continue;
			}
			if (next < 0 || c->deadline < next)
				next = c->deadline;
			pf[n] = (struct pollfd){ c->fd, POLLIN, 0 };
			who[n++] = c;
		}
		int wait = next < 0 ? -1 : (int)(next - now);
		int r = poll(pf, n, wait);
		if (r < 0) {
			if (errno != EINTR) {
				logmsg("poll: %s", strerror(errno));
				sleep_ms(100);
			}
			continue;
		}
		for (nfds_t i = 1; i < n; i++) {
			if (!pf[i].revents || who[i]->fd < 0)
				continue;
			if (client_readable(who[i]))
				power_off();
		}
		if (pf[0].revents & POLLIN)
			accept_one(listener);
	}
}

/* ---- main ---- */

static void usage(FILE *to)
{
	fprintf(to,
		"usage: %s [--port N] [--unix PATH] [--timeout-ms N] [--sysroot DIR]\n"
		"  --port N        vsock port to listen on (default %d)\n"
		"  --unix PATH     listen on a Unix socket instead (for tests)\n"
		"  --timeout-ms N  a connection must send each line within N ms (default %d)\n"
		"  --sysroot DIR   read /proc/net, /run/systemd and run systemctl/poweroff\n"
		"                  under DIR, never call reboot(2) (for tests)\n"
		"  --version       print the protocol version and exit\n",
		BG_AGENT_NAME, BG_AGENT_PORT, DEFAULT_TIMEOUT_MS);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
		return false;
	unsigned long v = strtoul(s, NULL, 10);
	if (v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long v;
		if (strcmp(a, "--port") == 0 && parse_uint(val, UINT32_MAX - 1, &v)) {
			opt.port = (unsigned)v;
			i++;
		} else if (strcmp(a, "--unix") == 0 && val && *val) {
			opt.unix_path = val;
			i++;
		} else if (strcmp(a, "--timeout-ms") == 0 && parse_uint(val, 3600000, &v) && v > 0) {
			opt.timeout_ms = (int)v;
			i++;
		} else if (strcmp(a, "--sysroot") == 0 && val && *val) {
			opt.sysroot = val;
			i++;
		} else if (strcmp(a, "--version") == 0) {
			printf("%s %d\n", BG_AGENT_NAME, BG_AGENT_PROTOCOL);
			return 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "%s: bad argument: %s\n", BG_AGENT_NAME, a);
			usage(stderr);
			return 2;
		}
	}
	/* a peer that goes away must not kill us: writes use MSG_NOSIGNAL,
	 * and this covers everything else */
	signal(SIGPIPE, SIG_IGN);
	int listener = opt.unix_path ? listen_unix(opt.unix_path) : listen_vsock(opt.port);
	if (listener < 0)
		return 1;
	serve(listener);
	return 0;
}
