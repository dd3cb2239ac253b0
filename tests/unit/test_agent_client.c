/* The host side of the vsock agent: bg_agent_request over a socketpair
 * against peers that answer, stall, hang up, talk too much or send
 * garbage; the READY parser; finding the agent in an ext4 image; finding
 * the agent's files on the host. */
#include "test_agent_fixture.h"

#include <pthread.h>

typedef struct {
	int fd;
	const char *answer;   /* written after the request line; NULL: none */
	size_t answer_len;    /* 0: strlen(answer) */
	bool hang_up;         /* close after the request (without answering) */
	bool hold;            /* wait for the client to close before closing */
	char request[128];
} peer_t;

static void *peer(void *arg)
{
	peer_t *p = arg;
	size_t len = 0;
	while (len + 1 < sizeof(p->request)) {
		char c;
		if (read(p->fd, &c, 1) != 1)
			break;
		p->request[len++] = c;
		if (c == '\n')
			break;
	}
	p->request[len] = '\0';
	if (p->answer) {
		size_t n = p->answer_len ? p->answer_len : strlen(p->answer);
		(void)!write(p->fd, p->answer, n);
	}
	if (p->hold || (!p->answer && !p->hang_up)) {
		char c;
		while (read(p->fd, &c, 1) > 0)
			;
	}
	close(p->fd);
	return NULL;
}

typedef struct {
	int client;
	peer_t p;
	pthread_t th;
} pair_t;

static void pair_start(pair_t *x, const char *answer, size_t len)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(&x->p, 0, sizeof(x->p));
	x->client = sv[0];
	x->p.fd = sv[1];
	x->p.answer = answer;
	x->p.answer_len = len;
	x->p.hold = true;
}

static void pair_run(pair_t *x)
{
	assert_int_equal(pthread_create(&x->th, NULL, peer, &x->p), 0);
}

static void pair_end(pair_t *x)
{
	close(x->client);
	pthread_join(x->th, NULL);
}

static void test_request_ok(void **st)
{
	pair_t x;
	pair_start(&x, "PONG\n", 0);
	pair_run(&x);
	char *r = NULL;
	assert_int_equal(bg_agent_request(&r, x.client, "PING", 2000), 0);
	assert_string_equal(r, "PONG");
	bg_free(r);
	pair_end(&x);
	assert_string_equal(x.p.request, "PING\n");

	/* CRLF is accepted; nothing after the newline is consumed */
	pair_start(&x, "OK one\r\nOK two\n", 0);
	pair_run(&x);
	assert_int_equal(bg_agent_request(&r, x.client, "READY", 2000), 0);
	assert_string_equal(r, "OK one");
	bg_free(r);
	char rest[16] = "";
	assert_int_equal(recv(x.client, rest, 7, MSG_WAITALL), 7);
	assert_string_equal(rest, "OK two\n");
	pair_end(&x);
}

static void test_request_stall(void **st)
{
	pair_t x;
	pair_start(&x, NULL, 0); /* reads the request, never answers */
	pair_run(&x);
	char *r = (char *)"x";
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_agent_request(&r, x.client, "READY", 300), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_null(r);
	assert_true(took >= 300 && took < 2000);
	assert_non_null(strstr(banger_error_last()->message, "no answer to READY within 300 ms"));
	pair_end(&x);

	/* half a line, then silence: same deadline */
	pair_start(&x, "OK sys", 0);
	pair_run(&x);
	t0 = bg_now_ms();
	assert_int_equal(bg_agent_request(&r, x.client, "READY", 300), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 < 2000);
	pair_end(&x);

	/* a peer that does not even read: the send side has its deadline
	 * too (fill the socket buffer first) */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	char junk[4096];
	memset(junk, 'j', sizeof(junk));
	while (send(sv[0], junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		;
	t0 = bg_now_ms();
	assert_int_equal(bg_agent_request(&r, sv[0], "PING", 300), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 < 2000);
	assert_non_null(strstr(banger_error_last()->message, "could not send PING"));
	close(sv[0]);
	close(sv[1]);
}

static void test_request_hangup(void **st)
{
	pair_t x;
	pair_start(&x, NULL, 0);
	x.p.hang_up = true;
	x.p.hold = false;
	pair_run(&x);
	char *r = NULL;
	assert_int_equal(bg_agent_request(&r, x.client, "PING", 2000), BANGER_EIO);
	assert_non_null(strstr(banger_error_last()->message, "closed before the answer to PING"));
	pair_end(&x);

	/* the peer is already gone: EPIPE, not SIGPIPE (which would kill
	 * this test) */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	assert_int_equal(bg_agent_request(&r, sv[0], "PING", 2000), BANGER_EIO);
	assert_int_equal(banger_error_last()->os_errno, EPIPE);
	close(sv[0]);
}

static void test_request_bad_answers(void **st)
{
	char big[1024];
	memset(big, 'A', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	pair_t x;
	pair_start(&x, big, sizeof(big));
	pair_run(&x);
	char *r = NULL;
	assert_int_equal(bg_agent_request(&r, x.client, "READY", 2000), BANGER_EVMM);
	assert_non_null(strstr(banger_error_last()->message, "longer than 256 bytes"));
	pair_end(&x);

	pair_start(&x, "OK\0evil\n", 8);
	pair_run(&x);
	assert_int_equal(bg_agent_request(&r, x.client, "READY", 2000), BANGER_EVMM);
	assert_non_null(strstr(banger_error_last()->message, "NUL"));
	pair_end(&x);

	/* an ERR line is a reply like any other: the caller judges it */
	pair_start(&x, "ERR unknown command\n", 0);
	pair_run(&x);
	assert_int_equal(bg_agent_request(&r, x.client, "PING", 2000), 0);
	assert_string_equal(r, "ERR unknown command");
	bg_free(r);
	pair_end(&x);
}

static void test_request_bad_commands(void **st)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	char *r = NULL;
	char longcmd[80];
	memset(longcmd, 'P', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = '\0';
	const char *bad[] = { NULL, "", "PING\nPOWEROFF", "PI\rNG", "P\tING", longcmd, "\xc3\xa9" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++)
		assert_int_equal(bg_agent_request(&r, sv[0], bad[i], 100), BANGER_EINVALID);
	/* nothing was sent */
	char c;
	assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
	close(sv[0]);
	close(sv[1]);
}

static void test_parse_ready(void **st)
{
	bg_agent_report r;
	assert_int_equal(bg_agent_parse_ready(&r, "OK systemd=running sshd=listening"), 0);
	assert_string_equal(r.systemd, "running");
	assert_true(r.sshd_listening);
	assert_int_equal(bg_agent_parse_ready(&r, "OK sshd=not-listening systemd=starting"), 0);
	assert_string_equal(r.systemd, "starting");
	assert_false(r.sshd_listening);
	/* newer agents may add words */
	assert_int_equal(bg_agent_parse_ready(&r, "OK systemd=degraded  load=0.5 sshd=listening extra"), 0);
	assert_string_equal(r.systemd, "degraded");
	assert_true(r.sshd_listening);

	const char *bad[] = { "ERR unknown command", "PONG", "OK", "OK systemd=running", "OK sshd=listening",
			      "OK systemd= sshd=listening", "OK systemd=Running sshd=listening",
			      "OK systemd=running sshd=yes", "OK systemd=running sshd=", "ok systemd=running sshd=listening",
			      "OK systemd=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa sshd=listening", "" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++) {
		if (bg_agent_parse_ready(&r, bad[i]) != BANGER_EVMM)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(bg_agent_parse_ready(&r, NULL), BANGER_EVMM);
}

/* ---- the image carries the agent ---- */

static void sh(const char *fmt, const char *a, const char *b)
{
	char cmd[16384];
	snprintf(cmd, sizeof(cmd), fmt, a, b);
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

static char *make_image(const char *dir, const char *name, const char *tree_setup)
{
	char *tree = bg_sprintf("%s/%s.d", dir, name);
	char *img = bg_sprintf("%s/%s.ext4", dir, name);
	sh("mkdir -p '%s' && cd '%s' && true", tree, tree);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "cd '%s' && %s", tree, tree_setup);
	assert_int_equal(system(cmd), 0);
	sh("mkfs.ext4 -q -F -d '%s' '%s' 8M >/dev/null", tree, img);
	bg_free(tree);
	return img;
}

static void test_image_has(void **st)
{
	char *mkfs = bg_which("mkfs.ext4");
	if (!mkfs)
		skip();
	bg_free(mkfs);
	char *dir = test_tmpdir();
	const char *agent = "mkdir -p usr/local/libexec && echo bin > usr/local/libexec/banger-vsock-agent && "
			    "chmod 755 usr/local/libexec/banger-vsock-agent";
	char setup[1024];

	snprintf(setup, sizeof(setup), "%s && mkdir -p etc/systemd/system && "
		 "echo unit > etc/systemd/system/banger-vsock-agent.service", agent);
	char *img = make_image(dir, "both", setup);
	assert_true(bg_agent_image_has(img));
	bg_free(img);

	/* the unit in the distribution's unit directory counts as well */
	snprintf(setup, sizeof(setup), "%s && mkdir -p usr/lib/systemd/system && "
		 "echo unit > usr/lib/systemd/system/banger-vsock-agent.service", agent);
	img = make_image(dir, "libunit", setup);
	assert_true(bg_agent_image_has(img));
	bg_free(img);

	/* /usr/local/libexec a symlink inside the image: followed inside it */
	img = make_image(dir, "link", "mkdir -p opt/x etc/systemd/system usr/local && echo bin > opt/x/banger-vsock-agent && "
		  "ln -s /opt/x usr/local/libexec && echo u > etc/systemd/system/banger-vsock-agent.service");
	assert_true(bg_agent_image_has(img));
	bg_free(img);

	img = make_image(dir, "nounit", agent);
	assert_false(bg_agent_image_has(img)); /* never started: no agent */
	bg_free(img);

	img = make_image(dir, "noagent", "mkdir -p etc/systemd/system && "
		  "echo unit > etc/systemd/system/banger-vsock-agent.service");
	assert_false(bg_agent_image_has(img));
	bg_free(img);

	img = make_image(dir, "isdir", "mkdir -p usr/local/libexec/banger-vsock-agent etc/systemd/system && "
		  "echo unit > etc/systemd/system/banger-vsock-agent.service");
	assert_false(bg_agent_image_has(img));
	bg_free(img);

	img = make_image(dir, "empty", "true");
	assert_false(bg_agent_image_has(img));
	bg_free(img);

	/* not ext4, missing, NULL: false, not an error */
	char *junk = bg_sprintf("%s/junk.img", dir);
	sh("head -c 1048576 /dev/urandom > '%s'%s", junk, "");
	assert_false(bg_agent_image_has(junk));
	bg_free(junk);
	char *missing = bg_sprintf("%s/missing.ext4", dir);
	assert_false(bg_agent_image_has(missing));
	bg_free(missing);
	assert_false(bg_agent_image_has(NULL));

	test_rmrf(dir);
	free(dir);
}

/* ---- the agent's files on the host ---- */

static void test_host_files(void **st)
{
	char *dir = test_tmpdir();
	char *a = NULL, *u = NULL;
	setenv("BANGER_GUEST_DIR", dir, 1);
	sh("touch '%s/banger-vsock-agent' '%s/banger-vsock-agent.service'", dir, dir);
	assert_int_equal(bg_agent_host_files(&a, &u), 0);
	char *want = bg_sprintf("%s/banger-vsock-agent", dir);
	assert_string_equal(a, want);
	bg_free(want);
	want = bg_sprintf("%s/banger-vsock-agent.service", dir);
	assert_string_equal(u, want);
	bg_free(want);
	bg_free(a);
	bg_free(u);

	/* without the unit this directory does not count: the next place
	 * that has both (the installed directory, else this build tree) */
	sh("rm '%s/banger-vsock-agent.service'%s", dir, "");
	assert_int_equal(bg_agent_host_files(&a, &u), 0);
	assert_false(bg_startswith(a, dir));
	assert_true(bg_endswith(a, "/banger-vsock-agent"));
	assert_true(bg_endswith(u, "/banger-vsock-agent.service"));
	assert_int_equal(access(a, X_OK), 0);
	assert_int_equal(access(u, R_OK), 0);
	bg_free(a);
	bg_free(u);
	unsetenv("BANGER_GUEST_DIR");
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_ok),
		cmocka_unit_test(test_request_stall),
		cmocka_unit_test(test_request_hangup),
		cmocka_unit_test(test_request_bad_answers),
		cmocka_unit_test(test_request_bad_commands),
		cmocka_unit_test(test_parse_ready),
		cmocka_unit_test(test_image_has),
		cmocka_unit_test(test_host_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
