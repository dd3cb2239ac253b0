/* Host side of hybrid vsock against a peer that behaves like
 * Firecracker's uds: answers "OK <n>", closes when nothing listens,
 * stalls, or says something else.  And AF_VSOCK's failure modes. */
#include "helpers.h"

#include "../../libbanger/vmm/vmm.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
	int listener;
	const char *mode;    /* "ok", "refuse-then-ok", "refuse", "stall", "garbage" */
	int refusals;        /* refuse-then-ok: how many */
	atomic_int accepted;
	char request[64];
} peer_t;

static void *peer(void *arg)
{
	peer_t *p = arg;
	for (;;) {
		int fd = accept(p->listener, NULL, NULL);
		if (fd < 0)
			return NULL;
		int n = atomic_fetch_add(&p->accepted, 1) + 1;
		char req[64] = "";
		size_t len = 0;
		while (len + 1 < sizeof(req)) {
			char c;
			if (read(fd, &c, 1) != 1)
				break;
			req[len++] = c;
			if (c == '\n')
				break;
		}
		req[len] = '\0';
		memcpy(p->request, req, sizeof(req));
		const char *m = p->mode;
		if (strcmp(m, "refuse-then-ok") == 0)
			m = n <= p->refusals ? "refuse" : "ok";
		if (strcmp(m, "ok") == 0) {
			/* the acknowledgement and the first guest bytes in one write */
			const char *s = "OK 1073741824\nHELLO";
			(void)!write(fd, s, strlen(s));
			char c;
			(void)!read(fd, &c, 1); /* hold until the client closes */
		} else if (strcmp(m, "stall") == 0) {
			char c;
			while (read(fd, &c, 1) > 0)
				;
		} else if (strcmp(m, "garbage") == 0) {
			(void)!write(fd, "ERR no\n", 7);
		}
		close(fd);
	}
}

typedef struct {
	char *dir;
	char path[4300];
	peer_t p;
	pthread_t th;
} fixture;

static void start(fixture *f, const char *mode, int refusals)
{
	f->dir = test_tmpdir();
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	memset(&f->p, 0, sizeof(f->p));
	f->p.listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f->p.listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->p.listener, 16), 0);
	f->p.mode = mode;
	f->p.refusals = refusals;
	assert_int_equal(pthread_create(&f->th, NULL, peer, &f->p), 0);
}

static void stop(fixture *f)
{
	shutdown(f->p.listener, SHUT_RDWR);
	pthread_join(f->th, NULL);
	close(f->p.listener);
	test_rmrf(f->dir);
	free(f->dir);
}

static void test_ok_keeps_guest_bytes(void **st)
{
	fixture f;
	start(&f, "ok", 0);
	int fd = -1;
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f.path, 52, 3000), 0);
	assert_true(fd > 2);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	char buf[8] = "";
	assert_int_equal(read(fd, buf, 5), 5);
	assert_memory_equal(buf, "HELLO", 5);
	close(fd);
	stop(&f);
	assert_string_equal(f.p.request, "CONNECT 52\n");
}

static void test_retries_until_guest_listens(void **st)
{
	fixture f;
	start(&f, "refuse-then-ok", 3);
	int fd = -1;
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f.path, 4096, 5000), 0);
	close(fd);
	stop(&f);
	assert_int_equal(atomic_load(&f.p.accepted), 4);
	assert_string_equal(f.p.request, "CONNECT 4096\n");
}

static void test_refused_times_out(void **st)
{
	fixture f;
	start(&f, "refuse", 0);
	int fd = 7;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f.path, 52, 600), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_int_equal(fd, -1);
	assert_true(took >= 550 && took < 600 + 2000);
	assert_non_null(strstr(banger_error_last()->message, "not listening on vsock port 52"));
	stop(&f);
	/* ~100 ms between attempts */
	int n = atomic_load(&f.p.accepted);
	assert_true(n >= 2 && n <= 8);
}

/* A CONNECT nobody answers must not hang past the deadline. */
static void test_stall_honours_deadline(void **st)
{
	fixture f;
	start(&f, "stall", 0);
	int fd = -1;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f.path, 52, 700), BANGER_ETIMEOUT);
	int64_t took = bg_now_ms() - t0;
	assert_true(took >= 650 && took < 700 + 2000);
	assert_non_null(strstr(banger_error_last()->message, "no answer to CONNECT 52"));
	/* a longer deadline gives several 1 s attempts */
	t0 = bg_now_ms();
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f.path, 52, 2300), BANGER_ETIMEOUT);
	took = bg_now_ms() - t0;
	assert_true(took >= 2250 && took < 2300 + 2000);
	stop(&f);
}

static void test_unexpected_answer(void **st)
{
	fixture f;
	start(&f, "garbage", 0);
	int fd = -1;
	assert_int_equal(bg_vsock_connect_hybrid(&fd, f.path, 52, 2000), BANGER_EVMM);
	assert_non_null(strstr(banger_error_last()->message, "ERR no"));
	stop(&f);
}

static void test_no_socket_yet(void **st)
{
	int fd = -1;
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_vsock_connect_hybrid(&fd, "/nonexistent/banger/v.sock", 52, 300), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 >= 250);
	assert_non_null(strstr(banger_error_last()->message, "cannot connect"));
	assert_int_equal(bg_vsock_connect_hybrid(&fd, "", 52, 300), BANGER_EINVALID);
}

/* AF_VSOCK: a CID nobody has fails within the deadline (or at once when
 * the host has no vsock at all). */
static void test_cid_unreachable(void **st)
{
	int fd = -1;
	int64_t t0 = bg_now_ms();
	int rc = bg_vsock_connect_cid(&fd, 0x7ffffff0u, 1234, 500);
	int64_t took = bg_now_ms() - t0;
	assert_int_not_equal(rc, 0);
	assert_int_equal(fd, -1);
	assert_true(took < 500 + 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_keeps_guest_bytes),
		cmocka_unit_test(test_retries_until_guest_listens),
		cmocka_unit_test(test_refused_times_out),
		cmocka_unit_test(test_stall_honours_deadline),
		cmocka_unit_test(test_unexpected_answer),
		cmocka_unit_test(test_no_socket_yet),
		cmocka_unit_test(test_cid_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
