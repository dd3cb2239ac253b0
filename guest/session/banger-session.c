/*
 * banger-session: the guest side of banger sessions.
 *
 * A static program with no dependency beyond libc, uploaded into a guest
 * by the host library on first use (or carried by the image).  It keeps a
 * command running detached from the SSH connection that started it:
 *
 *   banger-session start --dir D [--cwd DIR] [--env K=V]... [--tty]
 *                        [--rows R --cols C] -- CMD [ARG]...
 *       Creates D, daemonizes a supervisor (double fork, setsid) and
 *       returns once CMD runs (printing "pid N"), or fails when it cannot
 *       be started.  The supervisor gives CMD a pseudo-terminal (--tty) or
 *       pipes, appends every byte of output to D/log (so byte offsets are
 *       file offsets), records D/pid (CMD's pid, which is also its process
 *       group), D/helper.pid (the supervisor's pid and start time) and,
 *       when CMD ends and its output is drained, D/status ("exit N" or
 *       "signal N", written atomically).  It serves attachers on the Unix
 *       socket D/sock with the framing in banger-guest/session.h.
 *   banger-session logs --dir D [--from OFFSET] [--follow]
 *       Copies D/log from OFFSET to stdout; with --follow, keeps going
 *       until the session has ended and all of its output was written.
 *   banger-session attach --dir D
 *       Relays stdin to D/sock and D/sock to stdout (the frames are the
 *       host's business).
 *   banger-session stop --dir D [--signal S] [--timeout T]
 *       Sends S (default TERM) to the session's process group, waits up to
 *       T seconds (default 10) for it to end, then sends KILL.  Prints the
 *       final status (and "escalated" on a second line after a KILL).
 *   banger-session wait --dir D [--timeout T]
 *       Waits for the end; prints the final status.
 *   banger-session status --dir D [--dir D2]...
 *       One line per session: "ID STATE CODE LOG_SIZE", STATE one of
 *       running, exited, signaled, lost (the supervisor died without a
 *       status), missing.
 *   banger-session remove --dir D [--force]
 *       Deletes an ended session's directory (--force kills it first).
 *   banger-session version
 *
 * Exit codes (BG_SH_* in banger-guest/session.h): 0 done, 1 error,
 * 2 usage, 3 the session is lost, 4 no such session, 5 timed out, 6 still
 * running (remove), 7 already ended (attach).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

/* The contract with the host: names, exit codes, status words, frames. */
#include "../include/banger-guest/session.h"

#define MAX_CLIENTS 64
#define INPUT_QUEUE (256u * 1024u)
/* After CMD exits, output still buffered in the pipe or terminal is
 * drained until EOF, or until nothing arrived for DRAIN_IDLE_MS (a
 * background child may hold the terminal open), at most DRAIN_MAX_MS. */
#define DRAIN_IDLE_MS 300
#define DRAIN_MAX_MS 3000
/* Attachers get the rest of the output and the end frame within this. */
#define FINISH_MS 5000
#define CLIENT_OUT (SP_HEADER + SP_MAX_PAYLOAD + 512)

static const char *prog = BG_SESSION_HELPER_NAME;

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(BG_SH_ERROR_PREFIX, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(code);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			poll(&pf, 1, 1000);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- files in the session directory (paths relative to it) ---- */

/* Write name atomically: a temporary beside it, fsync, rename, fsync the
 * directory. */
static int write_atomic(int dirfd, const char *name, const char *text)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name) != 0) {
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	fsync(dirfd);
	return 0;
}

/* Read a small file into buf (NUL-terminated).  -1 when missing. */
static int read_small(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* The session's final status, when it has one: 1 and kind/code set. */
static int read_status(const char *dir, char *kind, int *code)
{
	char buf[64];
	if (read_small(dir, "status", buf, sizeof(buf)) != 0)
		return 0;
	return sp_parse_status(buf, strlen(buf), kind, code);
}

/* The start time of a process (field 22 of /proc/PID/stat), or 0. */
static unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* after ") " come fields 3.. ; start time is field 22 */
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return field == 22 ? strtoull(p, NULL, 10) : 0;
}

/* Is the supervisor of the session in dir still alive?  Compares the
 * start time recorded beside its pid, so a reused pid does not count. */
static bool supervisor_alive(const char *dir)
{
	char buf[128];
	if (read_small(dir, "helper.pid", buf, sizeof(buf)) != 0)
		return false;
	long pid = 0;
	unsigned long long start = 0;
	if (sscanf(buf, "%ld %llu", &pid, &start) < 1 || pid <= 0)
		return false;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return false;
	unsigned long long now = proc_start_time((pid_t)pid);
	if (start && now && now != start)
		return false;
	/* a zombie is not alive */
	char path[64], st[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, st, sizeof(st) - 1);
		close(fd);
		if (n > 0) {
			st[n] = '\0';
			char *p = strrchr(st, ')');
			if (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
				return false;
		}
	}
	return true;
}

static bool dir_exists(const char *dir)
{
	struct stat st;
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static int parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = { { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
		      { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "CONT", SIGCONT },
		      { "STOP", SIGSTOP }, { "ALRM", SIGALRM }, { "WINCH", SIGWINCH } };
	if (!s || !*s)
		return -1;
	if (*s >= '0' && *s <= '9') {
		char *end;
		long v = strtol(s, &end, 10);
		return *end || v <= 0 || v >= 65 ? -1 : (int)v;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].sig;
	return -1;
}

/* ---- options ---- */

typedef struct {
	const char *dirs[256];
	int ndirs;
	const char *cwd;
	const char *env[256];
	int nenv;
	bool tty, follow, force;
	unsigned rows, cols;
	unsigned long long from;
	const char *signal;
	long timeout_s; /* -1: default */
	char **cmd;
	int ncmd;
} opts;

static unsigned long long parse_num(const char *what, const char *s, unsigned long long max)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		die(BG_SH_USAGE, "%s: expected a number", what);
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		die(BG_SH_USAGE, "%s: invalid number '%s'", what, s);
	return v;
}

static void parse_opts(opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	o->timeout_s = -1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                  \
	do {                                                     \
		if (!v)                                          \
			die(BG_SH_USAGE, "%s needs a value", a);    \
		i++;                                             \
	} while (0)
		if (strcmp(a, "--") == 0) {
			o->cmd = argv + i + 1;
			o->ncmd = argc - i - 1;
			return;
		} else if (strcmp(a, "--dir") == 0) {
			NEEDV();
			if (o->ndirs >= 256)
				die(BG_SH_USAGE, "too many --dir");
			o->dirs[o->ndirs++] = v;
		} else if (strcmp(a, "--cwd") == 0) {
			NEEDV();
			o->cwd = v;
		} else if (strcmp(a, "--env") == 0) {
			NEEDV();
			if (!strchr(v, '=') || v[0] == '=')
				die(BG_SH_USAGE, "--env wants KEY=VALUE, not '%s'", v);
			if (o->nenv >= 256)
				die(BG_SH_USAGE, "too many --env");
			o->env[o->nenv++] = v;
		} else if (strcmp(a, "--tty") == 0) {
			o->tty = true;
		} else if (strcmp(a, "--follow") == 0) {
			o->follow = true;
		} else if (strcmp(a, "--force") == 0) {
			o->force = true;
		} else if (strcmp(a, "--rows") == 0) {
			NEEDV();
			o->rows = (unsigned)parse_num(a, v, 65535);
		} else if (strcmp(a, "--cols") == 0) {
			NEEDV();
			o->cols = (unsigned)parse_num(a, v, 65535);
		} else if (strcmp(a, "--from") == 0) {
			NEEDV();
			o->from = parse_num(a, v, (unsigned long long)INT64_MAX);
		} else if (strcmp(a, "--signal") == 0) {
			NEEDV();
			o->signal = v;
		} else if (strcmp(a, "--timeout") == 0) {
			NEEDV();
			o->timeout_s = (long)parse_num(a, v, 86400u * 365);
		} else {
			die(BG_SH_USAGE, "unknown option '%s'", a);
		}
#undef NEEDV
	}
}

static const char *one_dir(const opts *o)
{
	if (o->ndirs != 1)
		die(BG_SH_USAGE, "exactly one --dir is needed");
	return o->dirs[0];
}

/* ---- the supervisor ---- */

typedef struct {
	int fd;
	unsigned char in[SP_HEADER + SP_MAX_PAYLOAD];
	size_t in_len;
	bool hello;
	bool closing;   /* send what is queued, then close */
	bool end_sent;
	short revents;  /* from the last poll */
	uint64_t off;   /* next log offset to send */
	unsigned char *out;
	size_t out_len, out_pos;
} client;

typedef struct {
	int dirfd;
	int log_fd, log_rfd;
	uint64_t log_size;
	int out_fd;  /* terminal master or output pipe */
	int in_fd;   /* terminal master or stdin pipe; -1 once closed */
	bool tty;
	int listen_fd;
	int sig_fd;
	pid_t child;
	bool child_done;
	int child_status;
	bool out_eof;
	bool status_written;
	char status[32];
	unsigned char inq[INPUT_QUEUE];
	size_t inq_len;
	client *clients[MAX_CLIENTS];
	int nclients;
} supervisor;

static void client_free(client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->out);
	free(c);
}

static void drop_client(supervisor *s, int i)
{
	client_free(s->clients[i]);
	s->clients[i] = s->clients[--s->nclients];
}

/* Queue a small control frame for a client. */
static void client_queue(client *c, const unsigned char *frame, size_t len)
{
	if (c->out_len - c->out_pos + len > CLIENT_OUT) {
		c->closing = true;
		return;
	}
	if (c->out_pos > 0) {
		memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
		c->out_len -= c->out_pos;
		c->out_pos = 0;
	}
	memcpy(c->out + c->out_len, frame, len);
	c->out_len += len;
}

static void refuse(client *c, const char *why)
{
	unsigned char f[256];
	size_t n = strlen(why);
	if (n > 200)
		n = 200;
	client_queue(c, f, sp_encode_bytes(f, SP_REFUSED, why, (uint32_t)n));
	c->closing = true;
}

static void signal_child(supervisor *s, int sig)
{
	if (s->child_done || sig <= 0 || sig >= 65)
		return;
	if (kill(-s->child, sig) != 0)
		kill(s->child, sig);
}

/* Handle the complete frames in a client's input buffer. */
static void client_frames(supervisor *s, client *c)
{
	size_t pos = 0;
	while (!c->closing) {
		sp_frame f;
		size_t used;
		int r = sp_parse(c->in + pos, c->in_len - pos, &f, &used);
		if (r == 0)
			break;
		if (r < 0 || !sp_valid(&f)) {
			refuse(c, "protocol error");
			break;
		}
		if (!c->hello && f.type != SP_HELLO) {
			refuse(c, "expected hello");
			break;
		}
		if (f.type == SP_INPUT && f.len > sizeof(s->inq) - s->inq_len && s->in_fd >= 0)
			break; /* wait until the terminal took what is queued */
		switch (f.type) {
		case SP_HELLO: {
			uint32_t v = sp_get_u32(f.payload);
			if (v != SP_VERSION) {
				char why[96];
				snprintf(why, sizeof(why), "protocol version %u is not supported (this is %u)", v,
					 SP_VERSION);
				refuse(c, why);
				break;
			}
			uint64_t from = sp_get_u64(f.payload + 4);
			c->hello = true;
			c->off = (int64_t)from < 0 || from > s->log_size ? s->log_size : from;
			break;
		}
		case SP_INPUT:
			if (s->in_fd >= 0) {
				memcpy(s->inq + s->inq_len, f.payload, f.len);
				s->inq_len += f.len;
			}
			break;
		case SP_WINSIZE:
			if (s->tty) {
				struct winsize ws = { 0 };
				ws.ws_row = sp_get_u16(f.payload);
				ws.ws_col = sp_get_u16(f.payload + 2);
				if (ws.ws_row && ws.ws_col)
					ioctl(s->out_fd, TIOCSWINSZ, &ws);
			}
			break;
		case SP_SIGNAL:
			signal_child(s, (int)sp_get_u32(f.payload));
			break;
		default:
			refuse(c, "unexpected frame");
			break;
		}
		pos += used;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
}

/* Refill a client's send buffer from the log, then send what can go. */
static int client_send(supervisor *s, client *c)
{
	for (;;) {
		if (c->out_pos == c->out_len && c->hello && !c->closing && c->off < s->log_size) {
			uint64_t left = s->log_size - c->off;
			uint32_t n = left > SP_OUTPUT_CHUNK ? SP_OUTPUT_CHUNK : (uint32_t)left;
			ssize_t r = pread(s->log_rfd, c->out + 13, n, (off_t)c->off);
			if (r <= 0)
				return -1;
			unsigned char hdr[13];
			sp_header(hdr, SP_OUTPUT, (uint32_t)r + 8);
			sp_put_u64(hdr + 5, c->off);
			memcpy(c->out, hdr, 13);
			c->out_pos = 0;
			c->out_len = 13 + (size_t)r;
			c->off += (uint64_t)r;
		}
		if (c->out_pos == c->out_len)
			return 0;
		ssize_t w = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w < 0)
			return -1;
		c->out_pos += (size_t)w;
		if (c->out_pos == c->out_len)
			c->out_pos = c->out_len = 0;
	}
}

static void accept_clients(supervisor *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		client *c = s->nclients < MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
		if (c)
			c->out = malloc(CLIENT_OUT);
		if (!c || !c->out) {
			if (c)
				free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		s->clients[s->nclients++] = c;
	}
}

static void make_status(supervisor *s)
{
	int st = s->child_status;
	if (WIFSIGNALED(st))
		snprintf(s->status, sizeof(s->status), "signal %d", WTERMSIG(st));
	else
		snprintf(s->status, sizeof(s->status), "exit %d", WEXITSTATUS(st));
}

static void read_output(supervisor *s)
{
	char buf[65536];
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(s->out_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* EOF on the pipe, EIO on a terminal nobody holds */
			s->out_eof = true;
			return;
		}
		if (write_all(s->log_fd, buf, (size_t)n) != 0) {
			/* The log cannot grow (disk full): keep the session
			 * alive, the output is lost. */
			continue;
		}
		s->log_size += (uint64_t)n;
	}
}

static void flush_input(supervisor *s)
{
	while (s->inq_len > 0 && s->in_fd >= 0) {
		ssize_t n = write(s->in_fd, s->inq, s->inq_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* the reader is gone */
			s->inq_len = 0;
			if (!s->tty) {
				close(s->in_fd);
				s->in_fd = -1;
			}
			return;
		}
		memmove(s->inq, s->inq + n, s->inq_len - (size_t)n);
		s->inq_len -= (size_t)n;
	}
}

/* The supervisor loop's clock: when the child ended (output is drained
 * until it idles or for at most DRAIN_MAX_MS), when output last came,
 * and once the status is written, how long clients get to read the
 * rest. */
typedef struct {
	int64_t drain_start, last_data, finish_deadline;
	bool finishing;
} pump;

/* Where each descriptor sits in the poll set; -1 when not polled. */
typedef struct {
	int sig, listen, out, in, clients, n;
} slots;

static void fill_pollset(const supervisor *s, struct pollfd *p, slots *ix)
{
	int np = 0;
	ix->sig = np;
	p[np++] = (struct pollfd){ s->sig_fd, POLLIN, 0 };
	ix->listen = ix->out = ix->in = -1;
	if (s->listen_fd >= 0) {
		ix->listen = np;
		p[np++] = (struct pollfd){ s->listen_fd, POLLIN, 0 };
	}
	if (!s->out_eof) {
		ix->out = np;
		p[np++] = (struct pollfd){ s->out_fd, POLLIN, 0 };
	}
	if (s->inq_len > 0 && s->in_fd >= 0) {
		ix->in = np;
		p[np++] = (struct pollfd){ s->in_fd, POLLOUT, 0 };
	}
	ix->clients = np;
	for (int i = 0; i < s->nclients; i++) {
		client *c = s->clients[i];
		short ev = 0;
		if (!c->closing && c->in_len < sizeof(c->in))
			ev |= POLLIN;
		if (c->out_pos < c->out_len || (c->hello && !c->closing && c->off < s->log_size))
			ev |= POLLOUT;
		p[np++] = (struct pollfd){ c->fd, ev, 0 };
	}
	ix->n = np;
}

/* How long poll may wait: for ever, unless output is being drained or
 * clients are being finished. */
static int poll_timeout(const supervisor *s, const pump *pm, int64_t now)
{
	int timeout = -1;
	if (s->child_done && !s->out_eof) {
		int64_t until = pm->last_data + DRAIN_IDLE_MS;
		if (pm->drain_start + DRAIN_MAX_MS < until)
			until = pm->drain_start + DRAIN_MAX_MS;
		timeout = until > now ? (int)(until - now) : 0;
	}
	if (pm->finishing) {
		int64_t left = pm->finish_deadline - now;
		timeout = left > 0 ? (int)(left > 100 ? 100 : left) : 0;
	}
	return timeout;
}

/* SIGCHLD reaps (the session's process ending starts the drain); TERM,
 * INT and HUP to the supervisor are passed on. */
static void read_signals(supervisor *s, pump *pm, int64_t now)
{
	struct signalfd_siginfo si;
	while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
				if (w == s->child && !s->child_done) {
					s->child_done = true;
					s->child_status = st;
					pm->drain_start = pm->last_data = now;
				}
			}
		} else {
			/* TERM, INT, HUP to the supervisor: pass on */
			signal_child(s, (int)si.ssi_signo);
		}
	}
}

/* One client's turn: read its frames, send what is due, and once the
 * session is finishing, its end (or a refusal to one that never said
 * hello).  True when the client is to be dropped. */
static bool serve_client(supervisor *s, client *c, bool finishing)
{
	bool gone = false;
	if ((c->revents & (POLLIN | POLLHUP | POLLERR)) && !c->closing && c->in_len < sizeof(c->in)) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (n > 0)
			c->in_len += (size_t)n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			gone = true;
	}
	if (!gone)
		client_frames(s, c);
	if (!gone && client_send(s, c) != 0)
		gone = true;
	if (!gone && finishing && c->hello && !c->end_sent && !c->closing && c->off >= s->log_size &&
	    c->out_pos == c->out_len) {
		unsigned char f[64];
		client_queue(c, f, sp_encode_bytes(f, SP_END, s->status, (uint32_t)strlen(s->status)));
		c->end_sent = true;
		c->closing = true;
		if (client_send(s, c) != 0)
			gone = true;
	}
	if (!gone && finishing && !c->hello && !c->closing) {
		refuse(c, "the session has ended");
		if (client_send(s, c) != 0)
			gone = true;
	}
	if (!gone && c->closing && c->out_pos == c->out_len)
		gone = true;
	return gone;
}

/* After the child: drain what is left of the output, then write the
 * status and take no new attachers. */
static void settle(supervisor *s, pump *pm, int64_t now)
{
	if (s->child_done && !s->out_eof &&
	    (now - pm->last_data >= DRAIN_IDLE_MS || now - pm->drain_start >= DRAIN_MAX_MS)) {
		read_output(s); /* whatever is left right now */
		s->out_eof = true;
	}
	if (s->child_done && s->out_eof && !s->status_written) {
		/* Everything is in the log: now the status, then no
		 * new attachers. */
		fsync(s->log_fd);
		make_status(s);
		char line[40];
		snprintf(line, sizeof(line), "%s\n", s->status);
		write_atomic(s->dirfd, "status", line);
		s->status_written = true;
		unlinkat(s->dirfd, "sock", 0);
		close(s->listen_fd);
		s->listen_fd = -1;
		pm->finishing = true;
		pm->finish_deadline = now + FINISH_MS;
	}
}

static void supervise(supervisor *s)
{
	pump pm = { 0, 0, 0, false };
	for (;;) {
		struct pollfd p[4 + MAX_CLIENTS];
		slots ix;
		fill_pollset(s, p, &ix);
		int r = poll(p, (nfds_t)ix.n, poll_timeout(s, &pm, now_ms()));
		if (r < 0 && errno != EINTR)
			_exit(BG_SH_ERR);
		int64_t now = now_ms();

		if (r > 0 && p[ix.sig].revents)
			read_signals(s, &pm, now);
		if (ix.out >= 0 && p[ix.out].revents) {
			uint64_t before = s->log_size;
			read_output(s);
			if (s->log_size != before)
				pm.last_data = now;
		}
		if (ix.in >= 0 && p[ix.in].revents)
			flush_input(s);
		if (ix.listen >= 0 && p[ix.listen].revents)
			accept_clients(s);

		/* clients accepted just now were not polled */
		for (int i = 0; i < s->nclients; i++)
			s->clients[i]->revents = i < ix.n - ix.clients ? p[ix.clients + i].revents : 0;
		for (int i = 0; i < s->nclients; i++) {
			if (serve_client(s, s->clients[i], pm.finishing)) {
				drop_client(s, i);
				i--;
			}
		}
		if (s->inq_len > 0 && s->in_fd >= 0)
			flush_input(s);
		/* queued input made room: frames held back can go on */
		for (int i = 0; i < s->nclients; i++)
			if (s->clients[i]->in_len)
				client_frames(s, s->clients[i]);

		settle(s, &pm, now);
		if (pm.finishing && (s->nclients == 0 || now >= pm.finish_deadline))
			return;
	}
}

/* Runs in the forked child: become the session's process, exec CMD.
 * Failures are reported as "errno stage" through errfd. */
static void run_child(const opts *o, const char *orig_cwd, const char *slave, int in_rd, int out_wr,
		      int errfd, const char *id) __attribute__((noreturn));
static void run_child(const opts *o, const char *orig_cwd, const char *slave, int in_rd, int out_wr,
		      int errfd, const char *id)
{
	const char *stage = "setsid";
	if (setsid() < 0)
		goto fail;
	if (slave) {
		stage = "open the terminal";
		int t = open(slave, O_RDWR);
		if (t < 0)
			goto fail;
		stage = "set the controlling terminal";
		if (ioctl(t, TIOCSCTTY, 0) != 0)
			goto fail;
		dup2(t, 0);
		dup2(t, 1);
		dup2(t, 2);
		if (t > 2)
			close(t);
	} else {
		dup2(in_rd, 0);
		dup2(out_wr, 1);
		dup2(out_wr, 2);
		if (in_rd > 2)
			close(in_rd);
		if (out_wr > 2)
			close(out_wr);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < 65; sig++)
		sigaction(sig, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	stage = "change to the start directory";
	if (chdir(orig_cwd) != 0 && !o->cwd)
		goto fail;
	stage = "change to --cwd";
	if (o->cwd && chdir(o->cwd) != 0)
		goto fail;
	if (slave && !getenv("TERM"))
		setenv("TERM", "xterm", 1);
	setenv("BANGER_SESSION", id, 1);
	for (int i = 0; i < o->nenv; i++) {
		char *kv = strdup(o->env[i]);
		if (!kv || putenv(kv) != 0) {
			stage = "set the environment";
			goto fail;
		}
	}
	stage = "run";
	execvp(o->cmd[0], o->cmd);
fail: {
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "%d %s", errno, stage);
	if (write(errfd, msg, (size_t)n) < 0)
		_exit(126);
	_exit(127);
}
}

/* Report to the waiting `start` and close the pipe. */
static void report(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		write_all(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	close(fd);
}

static void remove_session_files(const char *dir);

/* Enter the session's directory and make its log and its socket; the
 * session's id is the directory's name. */
static void open_session_dir(supervisor *s, const char *dir, int ready)
{
	if (chdir(dir) != 0 || (s->dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		report(ready, "error cannot enter %s: %s\n", dir, strerror(errno));
		_exit(BG_SH_ERR);
	}
	s->log_fd = open("log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	s->log_rfd = open("log", O_RDONLY | O_CLOEXEC);
	if (s->log_fd < 0 || s->log_rfd < 0) {
		report(ready, "error cannot create %s/log: %s\n", dir, strerror(errno));
		_exit(BG_SH_ERR);
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, "sock");
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod("sock", 0600) != 0 || listen(s->listen_fd, 16) != 0) {
		report(ready, "error cannot listen on %s/sock: %s\n", dir, strerror(errno));
		_exit(BG_SH_ERR);
	}
}

/* The session's terminal (slave: the name of its other side) or pipes
 * (in_rd and out_wr: the child's ends). */
static void open_terminal(supervisor *s, const opts *o, char slave[128], int *in_rd, int *out_wr, int ready)
{
	if (o->tty) {
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		const char *name = m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0 ? ptsname(m) : NULL;
		if (!name) {
			report(ready, "error cannot allocate a pseudo-terminal: %s\n", strerror(errno));
			_exit(BG_SH_ERR);
		}
		snprintf(slave, 128, "%s", name);
		struct winsize ws = { 0 };
		ws.ws_row = (unsigned short)(o->rows ? o->rows : 24);
		ws.ws_col = (unsigned short)(o->cols ? o->cols : 80);
		ioctl(m, TIOCSWINSZ, &ws);
		fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
		s->in_fd = s->out_fd = m;
		s->tty = true;
	} else {
		int ip[2], op[2];
		if (pipe2(ip, O_CLOEXEC) != 0 || pipe2(op, O_CLOEXEC) != 0) {
			report(ready, "error pipe: %s\n", strerror(errno));
			_exit(BG_SH_ERR);
		}
		*in_rd = ip[0];
		s->in_fd = ip[1];
		s->out_fd = op[0];
		*out_wr = op[1];
		fcntl(s->in_fd, F_SETFL, O_NONBLOCK);
		fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
	}
}

/* Signals arrive through a descriptor; blocked before the fork so no
 * SIGCHLD is missed. */
static void take_signals(supervisor *s, int ready)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	if (s->sig_fd < 0) {
		report(ready, "error signalfd: %s\n", strerror(errno));
		_exit(BG_SH_ERR);
	}
}

/* Fork the session's process; it execs CMD or reports on a pipe why it
 * could not, and then nothing of the session is left behind. */
static void start_child(supervisor *s, const opts *o, const char *dir, const char *orig_cwd, const char *slave,
			int in_rd, int out_wr, int ready)
{
	const char *id = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	int errp[2];
	if (pipe2(errp, O_CLOEXEC) != 0) {
		report(ready, "error pipe: %s\n", strerror(errno));
		_exit(BG_SH_ERR);
	}
	pid_t child = fork();
	if (child < 0) {
		report(ready, "error fork: %s\n", strerror(errno));
		_exit(BG_SH_ERR);
	}
	if (child == 0) {
		close(errp[0]);
		close(ready);
		run_child(o, orig_cwd, o->tty ? slave : NULL, in_rd, out_wr, errp[1], id);
	}
	s->child = child;
	close(errp[1]);
	if (in_rd >= 0)
		close(in_rd);
	if (out_wr >= 0)
		close(out_wr);
	char msg[256];
	ssize_t n;
	while ((n = read(errp[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
		;
	close(errp[0]);
	if (n > 0) {
		msg[n] = '\0';
		int err = atoi(msg);
		const char *stage = strchr(msg, ' ') ? strchr(msg, ' ') + 1 : "start";
		waitpid(child, NULL, 0);
		/* nothing of a session that never ran is left behind */
		close(s->listen_fd);
		remove_session_files(".");
		rmdir(dir);
		report(ready, "error cannot %s%s%s: %s\n", stage, strcmp(stage, "run") == 0 ? " " : "",
		       strcmp(stage, "run") == 0 ? o->cmd[0] : "", strerror(err));
		_exit(BG_SH_ERR);
	}
}

/* The supervisor: set up the session, report to `start`, supervise. */
static void supervisor_main(const opts *o, const char *dir, const char *orig_cwd, int ready) __attribute__((noreturn));
static void supervisor_main(const opts *o, const char *dir, const char *orig_cwd, int ready)
{
	supervisor *s = calloc(1, sizeof(*s));
	if (!s) {
		report(ready, "error out of memory\n");
		_exit(BG_SH_ERR);
	}
	s->in_fd = s->out_fd = s->listen_fd = -1;
	open_session_dir(s, dir, ready);
	char slave[128] = "";
	int in_rd = -1, out_wr = -1;
	open_terminal(s, o, slave, &in_rd, &out_wr, ready);
	take_signals(s, ready);
	start_child(s, o, dir, orig_cwd, slave, in_rd, out_wr, ready);
	char text[64];
	snprintf(text, sizeof(text), "%d\n", (int)s->child);
	write_atomic(s->dirfd, "pid", text);
	snprintf(text, sizeof(text), "%d %llu\n", (int)getpid(), proc_start_time(getpid()));
	write_atomic(s->dirfd, "helper.pid", text);
	report(ready, "ok %d\n", (int)s->child);
	supervise(s);
	for (int i = 0; i < s->nclients; i++)
		client_free(s->clients[i]);
	_exit(BG_SH_OK);
}

static int cmd_start(const opts *o)
{
	const char *dir = one_dir(o);
	if (o->ncmd < 1)
		die(BG_SH_USAGE, "start: no command after --");
	if (dir[0] != '/')
		die(BG_SH_USAGE, "start: --dir must be absolute");
	char orig_cwd[PATH_MAX];
	if (!getcwd(orig_cwd, sizeof(orig_cwd)))
		snprintf(orig_cwd, sizeof(orig_cwd), "/");
	/* the parent of D (mkdir -p), then D itself, which must be new */
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		for (char *p = parent + 1;; p++) {
			if (*p == '/' || *p == '\0') {
				char c = *p;
				*p = '\0';
				if (mkdir(parent, 0700) != 0 && errno != EEXIST)
					die(BG_SH_ERR, "cannot create %s: %s", parent, strerror(errno));
				*p = c;
				if (!c)
					break;
			}
		}
	}
	if (mkdir(dir, 0700) != 0)
		die(errno == EEXIST ? BG_SH_RUNNING : BG_SH_ERR, "cannot create %s: %s", dir, strerror(errno));

	int rp[2];
	if (pipe2(rp, O_CLOEXEC) != 0)
		die(BG_SH_ERR, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		die(BG_SH_ERR, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(rp[0]);
		setsid();
		pid_t p2 = fork();
		if (p2 != 0)
			_exit(p2 < 0 ? BG_SH_ERR : BG_SH_OK);
		/* the supervisor: no terminal, nothing of the SSH channel */
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		/* close everything inherited but the report pipe */
		DIR *d = opendir("/proc/self/fd");
		if (d) {
			int dfd = dirfd(d);
			struct dirent *e;
			while ((e = readdir(d))) {
				int fd = atoi(e->d_name);
				if (fd > 2 && fd != rp[1] && fd != dfd && e->d_name[0] != '.')
					close(fd);
			}
			closedir(d);
		}
		umask(077);
		supervisor_main(o, dir, orig_cwd, rp[1]);
	}
	close(rp[1]);
	waitpid(pid, NULL, 0);
	char msg[512];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(rp[0], msg + have, sizeof(msg) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == sizeof(msg) - 1)
			break;
	}
	msg[have] = '\0';
	close(rp[0]);
	if (strncmp(msg, "ok ", 3) == 0) {
		printf("pid %d\n", atoi(msg + 3));
		return BG_SH_OK;
	}
	if (strncmp(msg, "error ", 6) == 0) {
		msg[strcspn(msg, "\n")] = '\0';
		die(BG_SH_ERR, "%s", msg + 6);
	}
	die(BG_SH_ERR, "the session supervisor died while starting");
}

/* ---- waiting on the session directory ---- */

typedef struct {
	int ino;
} watcher;

static void watch_open(watcher *w, const char *dir)
{
	w->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->ino >= 0 &&
	    inotify_add_watch(w->ino, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE) < 0) {
		close(w->ino);
		w->ino = -1;
	}
}

/* Sleep until something changes in the directory, watch_fd (if >= 0)
 * reports trouble, or ms pass.  Returns -1 when watch_fd broke. */
static int watch_wait(watcher *w, int ms, int watch_fd)
{
	struct pollfd p[2];
	int n = 0;
	if (w->ino >= 0)
		p[n++] = (struct pollfd){ w->ino, POLLIN, 0 };
	int iw = -1;
	if (watch_fd >= 0) {
		iw = n;
		p[n++] = (struct pollfd){ watch_fd, 0, 0 };
	}
	if (w->ino < 0 && ms > 100)
		ms = 100;
	int r = poll(p, (nfds_t)n, ms);
	if (r > 0 && w->ino >= 0 && p[0].revents) {
		char buf[4096];
		while (read(w->ino, buf, sizeof(buf)) > 0)
			;
	}
	if (r > 0 && iw >= 0 && (p[iw].revents & (POLLERR | POLLHUP | POLLNVAL)))
		return -1;
	return 0;
}

static void session_must_exist(const char *dir)
{
	if (!dir_exists(dir))
		die(BG_SH_MISSING, "no session at %s", dir);
}

/* ---- logs ---- */

static int cmd_logs(const opts *o)
{
	const char *dir = one_dir(o);
	session_must_exist(dir);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/log", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(errno == ENOENT ? BG_SH_MISSING : BG_SH_ERR, "cannot open %s: %s", path, strerror(errno));
	uint64_t off = o->from;
	struct stat st;
	if (!o->follow && fstat(fd, &st) == 0 && off > (uint64_t)st.st_size)
		die(BG_SH_USAGE, "offset %llu is past the end of the log (%lld bytes)", (unsigned long long)off,
		    (long long)st.st_size);
	watcher w = { -1 };
	if (o->follow)
		watch_open(&w, dir);
	static char buf[65536];
	for (;;) {
		char kind;
		int code;
		bool ended = read_status(dir, &kind, &code);
		for (;;) {
			ssize_t n = pread(fd, buf, sizeof(buf), (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				die(BG_SH_ERR, "read %s: %s", path, strerror(errno));
			if (n == 0)
				break;
			if (write_all(1, buf, (size_t)n) != 0)
				return BG_SH_ERR; /* the reader went away */
			off += (uint64_t)n;
		}
		if (!o->follow || ended)
			return BG_SH_OK;
		if (!supervisor_alive(dir) && !read_status(dir, &kind, &code)) {
			/* one more pass: output may have landed before it died */
			struct stat s2;
			if (fstat(fd, &s2) == 0 && (uint64_t)s2.st_size > off)
				continue;
			die(BG_SH_LOST, "the session's supervisor is gone and it left no status: the session is lost");
		}
		if (watch_wait(&w, 1000, 1) < 0)
			return BG_SH_ERR;
	}
}

/* ---- wait ---- */

static void print_status(char kind, int code)
{
	printf("%s %d\n", kind == 's' ? "signal" : "exit", code);
	fflush(stdout);
}

/* Wait for the status up to timeout_ms (-1: forever).  Returns BG_SH_OK
 * (kind/code set), BG_SH_LOST or BG_SH_TIMEOUT, or BG_SH_ERR when watch_fd (if
 * >= 0: our stdout, the SSH channel) breaks: nobody waits any more. */
static int wait_status(const char *dir, int64_t timeout_ms, char *kind, int *code, int watch_fd)
{
	watcher w = { -1 };
	watch_open(&w, dir);
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
	int rc;
	for (;;) {
		if (read_status(dir, kind, code)) {
			rc = BG_SH_OK;
			break;
		}
		if (!supervisor_alive(dir)) {
			rc = read_status(dir, kind, code) ? BG_SH_OK : BG_SH_LOST;
			break;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			rc = BG_SH_TIMEOUT;
			break;
		}
		if (watch_wait(&w, left > 1000 ? 1000 : (int)left, watch_fd) < 0) {
			rc = BG_SH_ERR;
			break;
		}
	}
	if (w.ino >= 0)
		close(w.ino);
	return rc;
}

static int cmd_wait(const opts *o)
{
	const char *dir = one_dir(o);
	session_must_exist(dir);
	char kind;
	int code;
	int rc = wait_status(dir, o->timeout_s < 0 ? -1 : o->timeout_s * 1000, &kind, &code, 1);
	if (rc == BG_SH_OK)
		print_status(kind, code);
	else if (rc == BG_SH_ERR)
		return BG_SH_ERR;
	else if (rc == BG_SH_LOST)
		die(BG_SH_LOST, "the session's supervisor is gone and it left no status: the session is lost");
	else
		die(BG_SH_TIMEOUT, "timed out waiting for the session to end");
	return BG_SH_OK;
}

/* ---- talking to the supervisor ---- */

static int connect_session(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int r;
	if (strlen(path) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, path);
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} else {
		/* too long for sun_path: connect relative to the directory */
		int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		strcpy(sa.sun_path, "sock");
		r = here >= 0 && chdir(dir) == 0 ? connect(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
		if (here >= 0) {
			if (fchdir(here) != 0)
				r = -1;
			close(here);
		}
	}
	if (r != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Deliver a signal through the supervisor, else straight to the process
 * group in D/pid while the supervisor lives.  0 when sent. */
static int send_signal(const char *dir, int sig)
{
	int fd = connect_session(dir);
	if (fd >= 0) {
		unsigned char f[32];
		size_t n = sp_encode_hello(f, -1);
		n += sp_encode_signal(f + n, (uint32_t)sig);
		ssize_t w = send(fd, f, n, MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
		/* wait for the supervisor to have read it: it closes us */
		if (w == (ssize_t)n) {
			struct pollfd p = { fd, POLLIN, 0 };
			char buf[4096];
			int64_t until = now_ms() + 2000;
			while (now_ms() < until && poll(&p, 1, 100) >= 0) {
				if (p.revents) {
					ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
					if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
						break;
				}
			}
		}
		close(fd);
		if (w == (ssize_t)n)
			return 0;
	}
	if (!supervisor_alive(dir))
		return -1;
	char buf[64];
	if (read_small(dir, "pid", buf, sizeof(buf)) != 0)
		return -1;
	pid_t pid = (pid_t)atoi(buf);
	if (pid <= 1)
		return -1;
	if (kill(-pid, sig) != 0 && kill(pid, sig) != 0)
		return -1;
	return 0;
}

static int cmd_stop(const opts *o)
{
	const char *dir = one_dir(o);
	session_must_exist(dir);
	int sig = o->signal ? parse_signal(o->signal) : SIGTERM;
	if (sig < 0)
		die(BG_SH_USAGE, "unknown signal '%s'", o->signal);
	char kind;
	int code;
	if (read_status(dir, &kind, &code)) {
		print_status(kind, code);
		return BG_SH_OK;
	}
	if (send_signal(dir, sig) != 0 && !read_status(dir, &kind, &code)) {
		if (!supervisor_alive(dir))
			die(BG_SH_LOST, "the session's supervisor is gone and it left no status: the session is lost");
	}
	long t = o->timeout_s < 0 ? 10 : o->timeout_s;
	int rc = wait_status(dir, t * 1000, &kind, &code, -1);
	bool escalated = false;
	if (rc == BG_SH_TIMEOUT && sig != SIGKILL) {
		escalated = true;
		send_signal(dir, SIGKILL);
		rc = wait_status(dir, 15000, &kind, &code, -1);
	}
	if (rc == BG_SH_LOST)
		die(BG_SH_LOST, "the session's supervisor is gone and it left no status: the session is lost");
	if (rc != BG_SH_OK)
		die(BG_SH_TIMEOUT, "the session did not end after SIGKILL");
	print_status(kind, code);
	if (escalated)
		printf("escalated\n");
	return BG_SH_OK;
}

/* ---- attach: relay stdin <-> D/sock ---- */

static int cmd_attach(const opts *o)
{
	const char *dir = one_dir(o);
	session_must_exist(dir);
	signal(SIGPIPE, SIG_IGN);
	int fd = connect_session(dir);
	if (fd < 0) {
		char kind;
		int code;
		if (read_status(dir, &kind, &code)) {
			print_status(kind, code);
			return BG_SH_ENDED;
		}
		if (!supervisor_alive(dir))
			die(BG_SH_LOST, "the session's supervisor is gone and it left no status: the session is lost");
		die(BG_SH_ERR, "cannot connect to %s/sock: %s", dir, strerror(errno));
	}
	static char buf[65536];
	bool in_open = true;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return BG_SH_ERR;
		}
		if (p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n > 0) {
				const char *q = buf;
				while (n > 0) {
					ssize_t w = send(fd, q, (size_t)n, MSG_NOSIGNAL);
					if (w < 0 && errno == EINTR)
						continue;
					if (w <= 0)
						return BG_SH_OK; /* the supervisor closed us */
					q += w;
					n -= w;
				}
			} else if (n == 0 || errno != EINTR) {
				in_open = false;
				shutdown(fd, SHUT_WR);
			}
		}
		if (p[0].revents) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n == 0 || (n < 0 && errno != EINTR))
				return BG_SH_OK;
			if (n > 0 && write_all(1, buf, (size_t)n) != 0)
				return BG_SH_ERR;
		}
	}
}

/* ---- status, remove ---- */

static uint64_t log_size(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/log", dir);
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int cmd_status(const opts *o)
{
	if (o->ndirs < 1)
		die(BG_SH_USAGE, "status: at least one --dir is needed");
	for (int i = 0; i < o->ndirs; i++) {
		const char *dir = o->dirs[i];
		const char *id = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
		char kind;
		int code;
		if (!dir_exists(dir))
			printf("%s " BG_SH_STATE_MISSING " - -\n", id);
		else if (read_status(dir, &kind, &code))
			printf("%s %s %d %llu\n", id, kind == 's' ? BG_SH_STATE_SIGNALED : BG_SH_STATE_EXITED, code,
			       (unsigned long long)log_size(dir));
		else if (supervisor_alive(dir))
			printf("%s " BG_SH_STATE_RUNNING " - %llu\n", id, (unsigned long long)log_size(dir));
		else if (read_status(dir, &kind, &code)) /* ended just now */
			printf("%s %s %d %llu\n", id, kind == 's' ? BG_SH_STATE_SIGNALED : BG_SH_STATE_EXITED, code,
			       (unsigned long long)log_size(dir));
		else
			printf("%s " BG_SH_STATE_LOST " - %llu\n", id, (unsigned long long)log_size(dir));
	}
	return BG_SH_OK;
}

static void remove_session_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	int dfd = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dfd, e->d_name, 0);
	closedir(d);
}

static int cmd_remove(const opts *o)
{
	const char *dir = one_dir(o);
	if (!dir_exists(dir))
		return BG_SH_OK;
	char kind;
	int code;
	if (!read_status(dir, &kind, &code) && supervisor_alive(dir)) {
		if (!o->force)
			die(BG_SH_RUNNING, "the session is still running (stop it first, or --force)");
		send_signal(dir, SIGKILL);
		if (wait_status(dir, 15000, &kind, &code, -1) == BG_SH_TIMEOUT)
			die(BG_SH_TIMEOUT, "the session did not end after SIGKILL");
	}
	remove_session_files(dir);
	if (rmdir(dir) != 0 && errno != ENOENT)
		die(BG_SH_ERR, "cannot remove %s: %s", dir, strerror(errno));
	return BG_SH_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die(BG_SH_USAGE, "usage: %s start|logs|attach|stop|wait|status|remove|version --dir D ...", prog);
	const char *verb = argv[1];
	if (strcmp(verb, "version") == 0) {
		printf(BG_SH_VERSION_FORMAT "\n", SP_VERSION);
		return BG_SH_OK;
	}
	opts o;
	parse_opts(&o, argc - 2, argv + 2);
	if (strcmp(verb, "start") == 0)
		return cmd_start(&o);
	if (o.ncmd)
		die(BG_SH_USAGE, "%s takes no command", verb);
	if (strcmp(verb, "logs") == 0)
		return cmd_logs(&o);
	if (strcmp(verb, "attach") == 0)
		return cmd_attach(&o);
	if (strcmp(verb, "stop") == 0)
		return cmd_stop(&o);
	if (strcmp(verb, "wait") == 0)
		return cmd_wait(&o);
	if (strcmp(verb, "status") == 0)
		return cmd_status(&o);
	if (strcmp(verb, "remove") == 0)
		return cmd_remove(&o);
	die(BG_SH_USAGE, "unknown command '%s'", verb);
}
