/* The QMP client: message parsing, and the conversation against a
 * scripted peer on a Unix socket (greeting, capabilities, events between
 * replies, errors, a peer that stalls or hangs up). */
#include "helpers.h"

#include "../../libbanger/vmm/vmm.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- parsing ---- */

static void test_parse_kinds(void **st)
{
	bg_qmp_msg m;
	assert_int_equal(bg_qmp_parse(&m, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
					  "\"major\": 7}, \"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}"),
			 0);
	assert_int_equal(m.kind, BG_QMP_MSG_GREETING);
	bg_qmp_msg_free(&m);

	assert_int_equal(bg_qmp_parse(&m, "{\"return\": {}}"), 0);
	assert_int_equal(m.kind, BG_QMP_MSG_RETURN);
	assert_string_equal(m.ret, "{}");
	bg_qmp_msg_free(&m);

	assert_int_equal(bg_qmp_parse(&m, "{\"return\": {\"status\": \"running\", \"singlestep\": false, "
					  "\"running\": true}, \"id\": 3}"), 0);
	assert_int_equal(m.kind, BG_QMP_MSG_RETURN);
	assert_string_equal(m.ret, "{\"status\":\"running\",\"singlestep\":false,\"running\":true}");
	bg_qmp_msg_free(&m);

	assert_int_equal(bg_qmp_parse(&m, "{\"return\": [1, 2]}"), 0);
	assert_string_equal(m.ret, "[1,2]");
	bg_qmp_msg_free(&m);

	assert_int_equal(bg_qmp_parse(&m, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
					  "\"The command nope has not been found\"}}"), 0);
	assert_int_equal(m.kind, BG_QMP_MSG_ERROR);
	assert_string_equal(m.cls, "CommandNotFound");
	assert_string_equal(m.desc, "The command nope has not been found");
	bg_qmp_msg_free(&m);

	assert_int_equal(bg_qmp_parse(&m, "{\"error\": {}}"), 0);
	assert_string_equal(m.cls, "GenericError");
	bg_qmp_msg_free(&m);

	assert_int_equal(bg_qmp_parse(&m, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
					  "\"event\": \"POWERDOWN\"}"), 0);
	assert_int_equal(m.kind, BG_QMP_MSG_EVENT);
	assert_string_equal(m.cls, "POWERDOWN");
	bg_qmp_msg_free(&m);
}

static void test_parse_bad(void **st)
{
	const char *bad[] = { "", "{", "[]", "\"x\"", "{\"something\": 1}", "{\"event\": 3}", "{\"QMP\": 1}",
			      "{\"return\": {}} trailing" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++) {
		bg_qmp_msg m;
		assert_int_equal(bg_qmp_parse(&m, bad[i]), BANGER_EVMM);
		assert_null(m.ret);
		assert_null(m.cls);
	}
}

static void test_parse_allocation_failures(void **st)
{
	const char *lines[] = { "{\"return\": {\"status\": \"running\"}}",
				"{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}",
				"{\"event\": \"SHUTDOWN\"}" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(lines); i++)
		for (uint64_t n = 1; n < 20; n++) {
			bg_qmp_msg m;
			bg_alloc_fail_at(n);
			int rc = bg_qmp_parse(&m, lines[i]);
			bg_alloc_fail_at(0);
			if (rc == 0) {
				bg_qmp_msg_free(&m);
				break;
			}
			assert_int_equal(rc, BANGER_ENOMEM);
			assert_null(m.ret);
			assert_null(m.cls);
			assert_null(m.desc);
		}
}

/* ---- conversation against a scripted peer ---- */

typedef struct {
	int listener;
	const char *script; /* what to do; see peer() */
	char got[4096];     /* what the client sent */
	size_t got_len;
} peer_t;

static const char GREETING[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
			       "\"package\": \"\"}, \"capabilities\": []}}\r\n";

static bool read_line(int fd, peer_t *p)
{
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n <= 0)
			return false;
		if (p->got_len + 1 < sizeof(p->got))
			p->got[p->got_len++] = c;
		if (c == '\n')
			return true;
	}
}

static void say(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void *peer(void *arg)
{
	peer_t *p = arg;
	int fd = accept(p->listener, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (strcmp(p->script, "stall-greeting") == 0) {
		char c;
		ssize_t ignored = read(fd, &c, 1); /* until the client gives up */
		(void)ignored;
		close(fd);
		return NULL;
	}
	say(fd, GREETING);
	if (!read_line(fd, p))
		goto done;
	say(fd, "{\"return\": {}}\n");
	if (!read_line(fd, p))
		goto done;
	if (strcmp(p->script, "status-with-events") == 0) {
		/* events may arrive before the reply, in two writes */
		say(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\n{\"ret");
		usleep(20000);
		say(fd, "urn\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}\n");
	} else if (strcmp(p->script, "error") == 0) {
		say(fd, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n");
	} else if (strcmp(p->script, "hangup") == 0) {
		/* close without answering */
	} else if (strcmp(p->script, "stall-reply") == 0) {
		char c;
		ssize_t ignored = read(fd, &c, 1);
		(void)ignored;
	} else {
		say(fd, "{\"return\": {}}\n");
	}
done:
	close(fd);
	return NULL;
}

typedef struct {
	char *dir;
	char path[4300];
	peer_t p;
	pthread_t th;
} fixture;

static void start_peer(fixture *f, const char *script)
{
	f->dir = test_tmpdir();
	snprintf(f->path, sizeof(f->path), "%s/qmp.sock", f->dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	memset(&f->p, 0, sizeof(f->p));
	f->p.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->p.listener >= 0);
	assert_int_equal(bind(f->p.listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->p.listener, 4), 0);
	f->p.script = script;
	assert_int_equal(pthread_create(&f->th, NULL, peer, &f->p), 0);
}

static void stop_peer(fixture *f)
{
	shutdown(f->p.listener, SHUT_RDWR);
	pthread_join(f->th, NULL);
	close(f->p.listener);
	test_rmrf(f->dir);
	free(f->dir);
}

static void test_query_status_skips_events(void **st)
{
	fixture f;
	start_peer(&f, "status-with-events");
	char *status = NULL;
	assert_int_equal(bg_qmp_query_status(&status, f.path, 3000), 0);
	assert_string_equal(status, "running");
	bg_free(status);
	stop_peer(&f);
	f.p.got[f.p.got_len] = '\0';
	assert_string_equal(f.p.got, "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-status\"}\n");
}

static void test_command_with_arguments(void **st)
{
	fixture f;
	start_peer(&f, "ok");
	bg_qmp q;
	assert_int_equal(bg_qmp_open(&q, f.path, 3000), 0);
	char *ret = NULL;
	assert_int_equal(bg_qmp_execute(&q, &ret, "human-monitor-command", "{\"command-line\": \"info status\"}", 3000),
			 0);
	assert_string_equal(ret, "{}");
	bg_free(ret);
	assert_int_equal(bg_qmp_execute(&q, NULL, "x", "[1]", 100), BANGER_EINVALID);
	bg_qmp_close(&q);
	bg_qmp_close(&q); /* idempotent */
	stop_peer(&f);
	f.p.got[f.p.got_len] = '\0';
	assert_non_null(strstr(f.p.got, "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"info status\"}}\n"));
}

static void test_error_reply(void **st)
{
	fixture f;
	start_peer(&f, "error");
	assert_int_equal(bg_qmp_command(f.path, "system_powerdown", 3000), BANGER_EVMM);
	const banger_error *e = banger_error_last();
	assert_non_null(strstr(e->message, "system_powerdown"));
	assert_non_null(strstr(e->message, "GenericError: nope"));
	stop_peer(&f);
}

static void test_hangup(void **st)
{
	fixture f;
	start_peer(&f, "hangup");
	assert_int_equal(bg_qmp_command(f.path, "query-status", 3000), BANGER_EIO);
	assert_non_null(strstr(banger_error_last()->message, "closed"));
	stop_peer(&f);
	/* after "quit", a closed connection is the expected outcome */
	start_peer(&f, "hangup");
	assert_int_equal(bg_qmp_command(f.path, "quit", 3000), 0);
	stop_peer(&f);
}

static void test_deadlines(void **st)
{
	fixture f;
	start_peer(&f, "stall-greeting");
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_qmp_command(f.path, "quit", 300), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 250 && took < 300 + 2000);
	stop_peer(&f);

	start_peer(&f, "stall-reply");
	t0 = bg_now_ms();
	assert_int_equal(bg_qmp_command(f.path, "query-status", 400), BANGER_ETIMEOUT);
	took = bg_now_ms() - t0;
	assert_true(took >= 350 && took < 400 + 2000);
	stop_peer(&f);
}

static void test_no_socket(void **st)
{
	bg_qmp q;
	assert_int_not_equal(bg_qmp_open(&q, "/nonexistent/banger/qmp.sock", 200), 0);
	assert_int_equal(q.fd, -1);
	char *s = (char *)1;
	assert_int_not_equal(bg_qmp_query_status(&s, "/nonexistent/banger/qmp.sock", 200), 0);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kinds),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_allocation_failures),
		cmocka_unit_test(test_query_status_skips_events),
		cmocka_unit_test(test_command_with_arguments),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_hangup),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_no_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
