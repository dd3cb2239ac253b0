/* Detached VMM spawning (libbanger/vmm/spawn.c): own session, reparented
 * (no zombie of ours), nothing inherited but 0-2, default signal state,
 * stdio appended to the log; waiting for sockets and for death; kill with
 * escalation and identity checks. */
#include "helpers.h"

#include "../../libbanger/vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static char marker[32]; /* sleep's argument, unique to this run */

static int setup(void **st)
{
	dir = test_tmpdir();
	snprintf(marker, sizeof(marker), "3600.%d", (int)getpid());
	return 0;
}

static int teardown(void **st)
{
	/* leftovers of a failed assertion */
	pid_t *pids = NULL;
	size_t n = 0;
	if (bg_proc_find(&pids, &n, marker) == 0)
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
	bg_free(pids);
	test_rmrf(dir);
	free(dir);
	return 0;
}

static char *path_in(const char *name)
{
	static char buf[4][4300];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static char *status_field(pid_t pid, const char *field)
{
	static char val[256];
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	val[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':') {
			snprintf(val, sizeof(val), "%s", line + strlen(field) + 1);
			val[strcspn(val, "\n")] = '\0';
			char *p = val;
			while (*p == ' ' || *p == '\t')
				p++;
			memmove(val, p, strlen(p) + 1);
		}
	fclose(f);
	return val;
}

static void test_detached_and_clean(void **st)
{
	const char *log = path_in("console.log");
	FILE *f = fopen(log, "w");
	fputs("previous\n", f);
	fclose(f);

	/* Things a careless host program leaves lying around. */
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
	int lp[2];
	assert_int_equal(pipe(lp), 0);
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	struct sigaction ign = { .sa_handler = SIG_IGN }, prev;
	sigaction(SIGUSR2, &ign, &prev);

	const char *argv[] = { "/bin/sleep", marker, NULL };
	pid_t pid = 0;
	assert_int_equal(bg_vmm_spawn_detached(&pid, argv, log), 0);
	assert_true(pid > 0);

	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGUSR2, &prev, NULL);
	close(leak);
	close(lp[0]);
	close(lp[1]);

	/* no zombie and no child of ours: the intermediate was reaped and the
	 * VMM is somebody else's child */
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	for (int i = 0; i < 100 && !bg_proc_cmdline_has(pid, marker); i++)
		usleep(10000);
	assert_true(bg_vmm_alive(marker, pid));
	char ppid[32];
	snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
	assert_string_not_equal(status_field(pid, "PPid"), ppid);

	/* own session and process group */
	assert_int_equal(getsid(pid), pid);
	assert_int_equal(getpgid(pid), pid);

	/* default signal mask and dispositions */
	assert_string_equal(status_field(pid, "SigBlk"), "0000000000000000");
	/* glibc's posix_spawn leaves its two internal signals (32, 33: below
	 * SIGRTMIN, unusable by programs) ignored in every child; everything
	 * a program can use, SIGUSR2 included, is back to SIG_DFL. */
	unsigned long long ignored = strtoull(status_field(pid, "SigIgn"), NULL, 16);
	assert_int_equal(ignored & ~((1ull << 31) | (1ull << 32)), 0);

	/* only 0, 1, 2: /dev/null and the log twice */
	char fddir[64];
	snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(fddir);
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		char link[600], target[4300] = "";
		snprintf(link, sizeof(link), "%s/%s", fddir, e->d_name);
		ssize_t k = readlink(link, target, sizeof(target) - 1);
		assert_true(k > 0);
		target[k] = '\0';
		if (fd > 2)
			fail_msg("inherited descriptor %d -> %s", fd, target);
		assert_string_equal(target, fd == 0 ? "/dev/null" : log);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 3);

	/* rediscovery */
	pid_t found = 0;
	assert_int_equal(bg_vmm_find(&found, marker), 0);
	assert_int_equal(found, pid);

	/* a kill aimed at another VM's socket leaves this process alone */
	bg_vm_spec other = { .api_sock = "/nonexistent/other.sock" };
	assert_int_equal(bg_vmm_kill(&other, pid, 100), 0);
	assert_true(bg_vmm_alive(marker, pid));

	bg_vm_spec mine = { .api_sock = marker };
	assert_int_equal(bg_vmm_kill(&mine, pid, 2000), 0);
	assert_false(bg_vmm_alive(marker, pid));
	assert_int_equal(bg_vmm_find(&found, marker), 0);
	assert_int_equal(found, 0);
	/* killing again is fine */
	assert_int_equal(bg_vmm_kill(&mine, pid, 100), 0);
	assert_int_equal(bg_vmm_terminate(pid, 100), 0);
}

static void test_stdio_appended(void **st)
{
	const char *log = path_in("out.log");
	FILE *f = fopen(log, "w");
	fputs("previous\n", f);
	fclose(f);
	const char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; read x || echo stdin-eof", NULL };
	pid_t pid = 0;
	assert_int_equal(bg_vmm_spawn_detached(&pid, argv, log), 0);
	assert_int_equal(bg_vmm_wait_gone(pid, 5000), 0);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(bg_read_file(&text, &len, log, 4096), 0);
	assert_string_equal(text, "previous\nout\nerr\nstdin-eof\n");
	bg_free(text);
}

static void test_spawn_errors(void **st)
{
	pid_t pid = 42;
	const char *missing[] = { "/nonexistent/firecracker", NULL };
	assert_int_equal(bg_vmm_spawn_detached(&pid, missing, path_in("x.log")), BANGER_EUNSUPPORTED);
	assert_int_equal(pid, 0);
	const char *relative[] = { "sleep", "1", NULL };
	assert_int_equal(bg_vmm_spawn_detached(&pid, relative, path_in("x.log")), BANGER_EINVALID);
	const char *ok[] = { "/bin/true", NULL };
	assert_int_not_equal(bg_vmm_spawn_detached(&pid, ok, "/nonexistent/dir/x.log"), 0);
	assert_int_equal(pid, 0);
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

static void test_wait_socket_vmm_dies(void **st)
{
	const char *log = path_in("dies.log");
	const char *argv[] = { "/bin/sh", "-c", "echo 'starting'; echo 'fatal: cannot open /dev/kvm' >&2; exit 1", NULL };
	pid_t pid = 0;
	assert_int_equal(bg_vmm_spawn_detached(&pid, argv, log), 0);
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vmm_wait_socket(path_in("never.sock"), pid, log, 10000), BANGER_EVMM);
	assert_true(bg_now_ms() - t0 < 5000);
	const char *msg = banger_error_last()->message;
	assert_non_null(strstr(msg, "exited before its socket"));
	assert_non_null(strstr(msg, "fatal: cannot open /dev/kvm"));
}

static void *listen_later(void *arg)
{
	usleep(200000);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen((const char *)arg) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, (const char *)arg, strlen((const char *)arg) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return (void *)(intptr_t)fd;
}

static void test_wait_socket(void **st)
{
	const char *sock = path_in("later.sock");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, listen_later, (void *)sock), 0);
	assert_int_equal(bg_vmm_wait_socket(sock, 0, NULL, 5000), 0);
	void *ret;
	pthread_join(th, &ret);
	close((int)(intptr_t)ret);

	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vmm_wait_socket(path_in("none.sock"), 0, NULL, 200), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 >= 200);

	/* stale sockets are removed, other files are not */
	assert_int_equal(bg_vmm_unlink_socket(sock), 0);
	assert_false(bg_path_exists(sock));
	assert_int_equal(bg_vmm_unlink_socket(sock), 0);
	const char *file = path_in("plain");
	FILE *f = fopen(file, "w");
	fclose(f);
	assert_int_equal(bg_vmm_unlink_socket(file), BANGER_EEXISTS);
	assert_true(bg_path_exists(file));
}

static void test_terminate_escalates(void **st)
{
	const char *argv[] = { "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", "term-ignorer-77", NULL };
	pid_t pid = 0;
	assert_int_equal(bg_vmm_spawn_detached(&pid, argv, path_in("t.log")), 0);
	for (int i = 0; i < 100 && !bg_proc_cmdline_has(pid, "term-ignorer-77"); i++)
		usleep(10000);
	usleep(100000); /* let the trap be installed */
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vmm_terminate(pid, 300), 0);
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 300);
	assert_false(bg_proc_cmdline_has(pid, "term-ignorer-77"));

	assert_int_equal(bg_vmm_wait_gone(pid, 0), 0);
	assert_int_equal(bg_vmm_terminate(0, 10), 0);
}

static size_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

/* Wait (bounded) until every relay of log has ended. */
static void wait_relays_gone(const char *log)
{
	for (int i = 0; i < 1000; i++) {
		pid_t *pids = NULL;
		size_t n = 0;
		assert_int_equal(bg_vmm_relay_find(&pids, &n, log), 0);
		bg_free(pids);
		if (n == 0)
			return;
		usleep(10000);
	}
	fail_msg("the console relay of %s did not end after its VMM", log);
}

/* A "VMM" that floods its console through the relay: the log and its one
 * rotation stay within the bound, the latest output is at the end, and
 * the relay ends with the VMM. */
static void test_relay_bounds_the_log(void **st)
{
	const char *log = path_in("flood.log");
	char script[512];
	snprintf(script, sizeof(script),
		 "i=0; while [ $i -lt 20000 ]; do echo \"flood line $i of a console that never stops\"; "
		 "i=$((i+1)); done; echo FLOOD-END; : %s", marker);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	pid_t pid = 0;
	assert_int_equal(bg_vmm_spawn_relayed(&pid, argv, log, 8192), 0);
	pid_t *pids = NULL;
	size_t n = 0;
	assert_int_equal(bg_vmm_relay_find(&pids, &n, log), 0);
	bg_free(pids);
	assert_int_equal(bg_vmm_wait_gone(pid, 60000), 0);
	wait_relays_gone(log);
	char older[4400];
	snprintf(older, sizeof(older), "%s.1", log);
	assert_true(file_size(log) <= 8192);
	assert_true(file_size(older) <= 8192);
	assert_true(file_size(older) > 0);
	char buf[16385];
	size_t got = bg_vmm_console_tail(buf, sizeof(buf) - 1, log);
	buf[got] = '\0';
	assert_true(got > 8192); /* across the rotation */
	assert_true(got <= file_size(log) + file_size(older));
	assert_non_null(strstr(buf, "flood line 19999 of"));
	assert_string_equal(buf + got - strlen("FLOOD-END\n"), "FLOOD-END\n");
	char tail[300];
	bg_vmm_log_tail(tail, sizeof(tail), log);
	assert_non_null(strstr(tail, "FLOOD-END"));
}

/* A relay killed with SIGKILL must not take the VMM with it (no SIGPIPE
 * death) nor block it (writes fail at once, with EPIPE). */
static void test_relay_killed_vmm_lives(void **st)
{
	const char *log = path_in("killed.log");
	const char *epipe = path_in("epipe");
	char script[600];
	snprintf(script, sizeof(script),
		 "while :; do echo tick || echo write-failed >> '%s'; sleep 0.01; done; : %s", epipe, marker);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	pid_t pid = 0;
	assert_int_equal(bg_vmm_spawn_relayed(&pid, argv, log, 65536), 0);
	pid_t *pids = NULL;
	size_t n = 0;
	for (int i = 0; i < 500 && n == 0; i++) {
		bg_free(pids);
		pids = NULL;
		assert_int_equal(bg_vmm_relay_find(&pids, &n, log), 0);
		if (!n)
			usleep(10000);
	}
	assert_int_equal(n, 1);
	assert_int_equal(kill(pids[0], SIGKILL), 0);
	bg_free(pids);
	wait_relays_gone(log);
	/* The VMM's next writes fail (SIGPIPE ignored) and it carries on. */
	for (int i = 0; i < 1000 && file_size(epipe) < 20; i++)
		usleep(10000);
	assert_true(file_size(epipe) >= 20);
	assert_true(bg_proc_alive(pid));
	assert_int_equal(bg_vmm_terminate(pid, 1000), 0);
	/* And the relay program must exist for a bound to be honoured. */
	setenv("BANGER_CONSOLE_RELAY", "/nonexistent/banger-console", 1);
	char *prog = NULL;
	assert_int_equal(bg_vmm_relay_program(&prog), 0); /* falls back to the build tree */
	assert_non_null(strstr(prog, "banger-console"));
	bg_free(prog);
	unsetenv("BANGER_CONSOLE_RELAY");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detached_and_clean),
		cmocka_unit_test(test_stdio_appended),
		cmocka_unit_test(test_spawn_errors),
		cmocka_unit_test(test_wait_socket_vmm_dies),
		cmocka_unit_test(test_wait_socket),
		cmocka_unit_test(test_terminate_escalates),
		cmocka_unit_test(test_relay_bounds_the_log),
		cmocka_unit_test(test_relay_killed_vmm_lives),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
