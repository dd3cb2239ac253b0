/* The vsock agent's line protocol (docs/vsock-agent.md), against the real
 * static binary listening on a Unix socket (--unix) with a fake system
 * root (--sysroot): commands, refusals, over-long lines, stalled clients
 * and their deadline, concurrent and sequential clients, the readiness
 * report and poweroff through stub programs. */
#include "test_agent_fixture.h"

#include <pthread.h>
#include <stdatomic.h>

static int setup(void **st)
{
	agent_fx *f = calloc(1, sizeof(*f));
	agent_fx_init(f);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	agent_fx *f = *st;
	agent_fx_free(f);
	free(f);
	return 0;
}

static void test_version_and_ping(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 5000);
	int fd = agent_dial(f->sock);
	assert_true(fd >= 0);
	agent_expect(fd, "VERSION", "OK banger-vsock-agent 1");
	agent_expect(fd, "PING", "PONG");
	agent_expect(fd, "PING", "PONG"); /* many commands per connection */
	close(fd);

	/* --version prints the same without listening */
	char cmd[4400];
	snprintf(cmd, sizeof(cmd), "%s --version", agent_bin());
	FILE *p = popen(cmd, "r");
	char line[128] = "";
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	assert_string_equal(line, "banger-vsock-agent 1\n");
}

/* Anything but the four commands is refused, and the connection stays
 * usable. */
static void test_refuses_unknown(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 5000);
	int fd = agent_dial(f->sock);
	const char *bad[] = { "FOO", "ping", "PING extra", " PING", "PING ", "VERSION?", "SHUTDOWN", "REBOOT",
			      "POWEROFF now", "poweroff", "READY READY", "EXEC /bin/sh", "GET / HTTP/1.1" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++)
		agent_expect(fd, bad[i], "ERR unknown command");
	agent_expect(fd, "PING", "PONG");

	/* raw bytes the client API would not send: an empty line, a NUL
	 * inside a command, CRLF (accepted) */
	const char raw[] = "\nPI\0NG\nPING\r\n";
	assert_int_equal(send(fd, raw, sizeof(raw) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(raw) - 1));
	char want[] = "ERR unknown command\nERR unknown command\nPONG\n";
	char got[sizeof(want)] = "";
	size_t len = 0;
	while (len < sizeof(want) - 1) {
		ssize_t n = recv(fd, got + len, sizeof(want) - 1 - len, 0);
		assert_true(n > 0);
		len += (size_t)n;
	}
	assert_string_equal(got, want);
	close(fd);
	assert_true(agent_running(f));
}

/* Several commands in one write are answered in order. */
static void test_pipelined(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 5000);
	int fd = agent_dial(f->sock);
	const char req[] = "PING\nVERSION\nNOPE\nREADY\nPING\n";
	assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
	shutdown(fd, SHUT_WR);
	bool eof;
	char *all = read_until_eof(fd, 5000, &eof);
	assert_true(eof);
	assert_string_equal(all, "PONG\nOK banger-vsock-agent 1\nERR unknown command\n"
				 "OK systemd=absent sshd=not-listening\nPONG\n");
	free(all);
	close(fd);
}

/* A line longer than the cap is refused and the connection closed; a
 * line just under it is answered. */
static void test_overlong_line(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 5000);
	int fd = agent_dial(f->sock);
	char big[4096];
	memset(big, 'A', sizeof(big));
	assert_int_equal(send(fd, big, sizeof(big), MSG_NOSIGNAL), (ssize_t)sizeof(big));
	bool eof;
	char *all = read_until_eof(fd, 5000, &eof);
	assert_true(eof);
	assert_string_equal(all, "ERR line too long\n");
	free(all);
	close(fd);

	/* 127 bytes + newline is the longest line: refused as unknown, not
	 * as too long, and the connection goes on */
	fd = agent_dial(f->sock);
	char line[140];
	memset(line, 'B', 127);
	memcpy(line + 127, "\nPING\n", 6);
	assert_int_equal(send(fd, line, 133, MSG_NOSIGNAL), 133);
	shutdown(fd, SHUT_WR);
	all = read_until_eof(fd, 5000, &eof);
	assert_true(eof);
	assert_string_equal(all, "ERR unknown command\nPONG\n");
	free(all);
	close(fd);

	/* 128 bytes without a newline: too long */
	fd = agent_dial(f->sock);
	memset(line, 'C', 128);
	assert_int_equal(send(fd, line, 128, MSG_NOSIGNAL), 128);
	all = read_until_eof(fd, 5000, &eof);
	assert_true(eof);
	assert_string_equal(all, "ERR line too long\n");
	free(all);
	close(fd);
	/* the agent is fine afterwards */
	fd = agent_dial(f->sock);
	agent_expect(fd, "PING", "PONG");
	close(fd);
}

/* A client that connects and says nothing, or half a line, is dropped at
 * the deadline; meanwhile other clients are served at once. */
static void test_stalled_client_deadline(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 400);
	int silent = agent_dial(f->sock);
	int half = agent_dial(f->sock);
	assert_int_equal(send(half, "PIN", 3, MSG_NOSIGNAL), 3);
	int64_t t0 = bg_now_ms();

	/* served while the two stall */
	int fd = agent_dial(f->sock);
	agent_expect(fd, "PING", "PONG");
	assert_true(bg_now_ms() - t0 < 300);
	close(fd);

	bool eof;
	char *all = read_until_eof(silent, 5000, &eof);
	int64_t took = bg_now_ms() - t0;
	assert_true(eof);
	assert_string_equal(all, "ERR timeout\n");
	assert_true(took >= 350 && took < 3000);
	free(all);
	all = read_until_eof(half, 5000, &eof);
	assert_true(eof);
	assert_string_equal(all, "ERR timeout\n");
	free(all);
	close(silent);
	close(half);
	print_message("stalled clients dropped after %lld ms (deadline 400 ms)\n", (long long)took);

	/* each complete line restarts the deadline */
	fd = agent_dial(f->sock);
	for (int i = 0; i < 4; i++) {
		usleep(250000);
		agent_expect(fd, "PING", "PONG");
	}
	close(fd);
}

/* More stalled clients than slots: the extra one is told and closed, and
 * the listener keeps working. */
static void test_busy(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 3000);
	int fds[16];
	for (int i = 0; i < 16; i++) {
		fds[i] = agent_dial(f->sock);
		assert_true(fds[i] >= 0);
	}
	/* make sure all sixteen were accepted: each one answers */
	for (int i = 0; i < 16; i++)
		agent_expect(fds[i], "PING", "PONG");
	int extra = agent_dial(f->sock);
	bool eof;
	char *all = read_until_eof(extra, 2000, &eof);
	assert_true(eof);
	assert_string_equal(all, "ERR busy\n");
	free(all);
	close(extra);
	close(fds[0]);
	/* a slot is free again */
	int64_t t0 = bg_now_ms();
	int fd = -1;
	for (;;) {
		fd = agent_dial(f->sock);
		char *r = NULL;
		int rc = bg_agent_request(&r, fd, "PING", 2000);
		bool ok = rc == 0 && strcmp(r, "PONG") == 0;
		bg_free(r);
		if (ok)
			break;
		close(fd);
		assert_true(bg_now_ms() - t0 < 2000);
		usleep(20000);
	}
	close(fd);
	for (int i = 1; i < 16; i++)
		close(fds[i]);
}

typedef struct {
	const char *sock;
	int rounds;
	atomic_int *failures;
} worker_arg;

static void *worker(void *p)
{
	worker_arg *w = p;
	for (int i = 0; i < w->rounds; i++) {
		int fd = agent_dial(w->sock);
		if (fd < 0) {
			atomic_fetch_add(w->failures, 1);
			continue;
		}
		const char *cmds[] = { "PING", "READY", "VERSION" };
		const char *want[] = { "PONG", "OK systemd=absent sshd=listening", "OK banger-vsock-agent 1" };
		for (int k = 0; k < 3; k++) {
			char *r = NULL;
			if (bg_agent_request(&r, fd, cmds[k], 5000) != 0 || strcmp(r, want[k]) != 0)
				atomic_fetch_add(w->failures, 1);
			bg_free(r);
		}
		close(fd);
	}
	return NULL;
}

static void test_concurrent_and_sequential_clients(void **st)
{
	agent_fx *f = *st;
	agent_root_file(f, "proc/net/tcp", TCP_HEADER TCP_SSHD_LISTEN, 0644);
	agent_start(f, 5000);
	atomic_int failures = 0;
	worker_arg w = { f->sock, 25, &failures };
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &w), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&failures), 0);

	/* sequential, including clients that vanish without reading */
	for (int i = 0; i < 100; i++) {
		int fd = agent_dial(f->sock);
		assert_true(fd >= 0);
		if (i % 2) {
			agent_expect(fd, "PING", "PONG");
		} else {
			/* a burst, then gone: replies hit a closed socket (EPIPE);
			 * the agent must neither die of SIGPIPE nor stall */
			char burst[120];
			for (size_t k = 0; k + 5 <= sizeof(burst); k += 5)
				memcpy(burst + k, "PING\n", 5);
			(void)!send(fd, burst, sizeof(burst), MSG_NOSIGNAL);
		}
		close(fd);
	}
	assert_true(agent_running(f));
	int fd = agent_dial(f->sock);
	agent_expect(fd, "PING", "PONG");
	close(fd);
}

static char *ready(agent_fx *f)
{
	int fd = agent_dial(f->sock);
	assert_true(fd >= 0);
	char *r = NULL;
	int rc = bg_agent_request(&r, fd, "READY", 10000);
	if (rc)
		fail_msg("READY: %s", banger_error_last()->message);
	close(fd);
	return r;
}

static void expect_ready(agent_fx *f, const char *want)
{
	char *r = ready(f);
	if (strcmp(r, want) != 0)
		fail_msg("READY answered \"%s\", expected \"%s\"", r, want);
	bg_free(r);
}

/* sshd: port 22 in LISTEN state in /proc/net/tcp or tcp6, nothing else. */
static void test_ready_sshd(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 5000);
	expect_ready(f, "OK systemd=absent sshd=not-listening"); /* no files at all */
	agent_root_file(f, "proc/net/tcp", TCP_HEADER, 0644);
	expect_ready(f, "OK systemd=absent sshd=not-listening");
	agent_root_file(f, "proc/net/tcp", TCP_HEADER TCP_SSH_CLIENT TCP_OTHER_LISTEN, 0644);
	expect_ready(f, "OK systemd=absent sshd=not-listening"); /* :22 but established; LISTEN but :2222 */
	agent_root_file(f, "proc/net/tcp", TCP_HEADER TCP_SSH_CLIENT TCP_OTHER_LISTEN TCP_SSHD_LISTEN, 0644);
	expect_ready(f, "OK systemd=absent sshd=listening");
	agent_root_file(f, "proc/net/tcp", TCP_HEADER, 0644);
	agent_root_file(f, "proc/net/tcp6", TCP_HEADER TCP6_SSHD_LISTEN, 0644);
	expect_ready(f, "OK systemd=absent sshd=listening"); /* IPv6 only */
	agent_root_file(f, "proc/net/tcp6", "garbage\n\n:::\n 0: zz:0016 00:0 0A\n", 0644);
	expect_ready(f, "OK systemd=absent sshd=not-listening");
}

/* systemd: "absent" without /run/systemd/system, else what systemctl
 * is-system-running prints (exit status ignored), "unknown" when it
 * cannot say. */
static void test_ready_systemd(void **st)
{
	agent_fx *f = *st;
	agent_start(f, 10000);
	agent_root_dir(f, "run/systemd/system");
	expect_ready(f, "OK systemd=unknown sshd=not-listening"); /* no systemctl */
	agent_root_file(f, "usr/bin/systemctl",
			"#!/bin/sh\n[ \"$1\" = is-system-running ] || exit 9\necho running\n", 0755);
	expect_ready(f, "OK systemd=running sshd=not-listening");
	agent_root_file(f, "usr/bin/systemctl", "#!/bin/sh\necho degraded\nexit 1\n", 0755);
	expect_ready(f, "OK systemd=degraded sshd=not-listening");
	agent_root_file(f, "usr/bin/systemctl", "#!/bin/sh\necho starting\nexit 1\n", 0755);
	expect_ready(f, "OK systemd=starting sshd=not-listening");
	agent_root_file(f, "usr/bin/systemctl", "#!/bin/sh\necho 'Running; rm -rf /'\n", 0755);
	expect_ready(f, "OK systemd=unknown sshd=not-listening"); /* not a state word */
	agent_root_file(f, "usr/bin/systemctl", "#!/bin/sh\nexit 3\n", 0755);
	expect_ready(f, "OK systemd=unknown sshd=not-listening"); /* nothing printed */

	/* a hanging systemctl is killed at its deadline (3 s) */
	agent_root_file(f, "usr/bin/systemctl", "#!/bin/sh\necho running\nexec sleep 30\n", 0755);
	int64_t t0 = bg_now_ms();
	expect_ready(f, "OK systemd=unknown sshd=not-listening");
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 2900 && took < 8000);
	print_message("hanging systemctl given up after %lld ms\n", (long long)took);
	assert_true(agent_running(f));
}

/* POWEROFF: "OK" first, then systemctl poweroff (systemd), else poweroff;
 * with --sysroot nothing else (no reboot(2)). */
static void test_poweroff(void **st)
{
	agent_fx *f = *st;
	char rec[4400];
	snprintf(rec, sizeof(rec), "%s/calls", f->dir);
	char script[8192];
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"systemctl $*\" >> '%s'\n", rec);
	agent_root_dir(f, "run/systemd/system");
	agent_root_file(f, "usr/bin/systemctl", script, 0755);
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"poweroff $*\" >> '%s'\n", rec);
	agent_root_file(f, "sbin/poweroff", script, 0755);
	agent_start(f, 5000);

	int fd = agent_dial(f->sock);
	agent_expect(fd, "POWEROFF", "OK");
	bool eof;
	char *rest = read_until_eof(fd, 5000, &eof);
	assert_true(eof); /* the agent hangs up after OK */
	assert_string_equal(rest, "");
	free(rest);
	close(fd);
	assert_true(wait_for_file(rec, 5000));
	char *calls = NULL;
	size_t len;
	assert_int_equal(bg_read_file(&calls, &len, rec, 4096), 0);
	assert_string_equal(calls, "systemctl poweroff\n");
	bg_free(calls);
	unlink(rec);

	/* systemctl fails: poweroff is next */
	snprintf(script, sizeof(script), "#!/bin/sh\necho \"systemctl $*\" >> '%s'\nexit 1\n", rec);
	agent_root_file(f, "usr/bin/systemctl", script, 0755);
	fd = agent_dial(f->sock);
	agent_expect(fd, "POWEROFF", "OK");
	close(fd);
	for (int i = 0; i < 500; i++) {
		if (bg_read_file(&calls, &len, rec, 4096) == 0 && strstr(calls, "poweroff \n"))
			break;
		bg_free(calls);
		calls = NULL;
		usleep(10000);
	}
	assert_non_null(calls);
	assert_string_equal(calls, "systemctl poweroff\npoweroff \n");
	bg_free(calls);
	unlink(rec);

	/* not systemd: straight to poweroff */
	char sd[4400];
	snprintf(sd, sizeof(sd), "%s/run/systemd/system", f->root);
	assert_int_equal(rmdir(sd), 0);
	fd = agent_dial(f->sock);
	agent_expect(fd, "POWEROFF", "OK");
	close(fd);
	assert_true(wait_for_file(rec, 5000));
	assert_int_equal(bg_read_file(&calls, &len, rec, 4096), 0);
	assert_string_equal(calls, "poweroff \n");
	bg_free(calls);

	/* nothing works: the agent says so and keeps serving */
	snprintf(sd, sizeof(sd), "%s/sbin/poweroff", f->root);
	assert_int_equal(unlink(sd), 0);
	fd = agent_dial(f->sock);
	agent_expect(fd, "POWEROFF", "OK");
	close(fd);
	fd = agent_dial(f->sock);
	agent_expect(fd, "PING", "PONG");
	close(fd);
	assert_true(agent_running(f));
	char *log = NULL;
	assert_int_equal(bg_read_file(&log, &len, f->log, 1 << 20), 0);
	assert_non_null(strstr(log, "poweroff: nothing worked (test sysroot: no reboot(2))"));
	bg_free(log);
}

static int run_agent(const char *args)
{
	char cmd[8192];
	/* a cut command would test something else (and gcc -O3 says so) */
	int n = snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", agent_bin(), args);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_bad_arguments(void **st)
{
	agent_fx *f = *st;
	assert_int_equal(run_agent("--port"), 2);
	assert_int_equal(run_agent("--port abc"), 2);
	assert_int_equal(run_agent("--port -1"), 2);
	assert_int_equal(run_agent("--port 4294967296"), 2);
	assert_int_equal(run_agent("--timeout-ms 0"), 2);
	assert_int_equal(run_agent("--frobnicate"), 2);
	assert_int_equal(run_agent("--help"), 0);
	/* --unix over something that is not a socket: refused, left alone */
	char path[4400], args[8192];
	snprintf(path, sizeof(path), "%s/regular", f->dir);
	agent_root_file(f, "../regular", "keep", 0644);
	snprintf(args, sizeof(args), "--unix %s", path);
	assert_int_equal(run_agent(args), 1);
	char *text = NULL;
	size_t len;
	assert_int_equal(bg_read_file(&text, &len, path, 64), 0);
	assert_string_equal(text, "keep");
	bg_free(text);
	/* a stale socket from a previous run is replaced */
	agent_start(f, 5000);
	agent_stop(f);
	assert_true(bg_path_exists(f->sock));
	agent_start(f, 5000);
	int fd = agent_dial(f->sock);
	agent_expect(fd, "PING", "PONG");
	close(fd);
}

int main(void)
{
	if (access(agent_bin(), X_OK) != 0) {
		fprintf(stderr, "the agent is not built at %s\n", agent_bin());
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_version_and_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlong_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stalled_client_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_and_sequential_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ready_sshd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ready_systemd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
