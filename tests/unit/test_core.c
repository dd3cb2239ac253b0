/* Core: errors, buffers, sizes, SHA-256, shell words, atomic files,
 * locks, running programs. */
#include "helpers.h"
#include "../../libbanger/core/core.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_error_record(void **state)
{
	(void)state;
	banger_error_clear();
	assert_null(banger_error_last());
	int rc = bg_error(BANGER_ENOTFOUND, "no VM named '%s'", "x");
	assert_int_equal(rc, BANGER_ENOTFOUND);
	const banger_error *e = banger_error_last();
	assert_non_null(e);
	assert_int_equal(e->code, BANGER_ENOTFOUND);
	assert_string_equal(e->message, "no VM named 'x'");
	bg_error_prefix("vm show");
	assert_string_equal(banger_error_last()->message, "vm show: no VM named 'x'");
	bg_error_os(BANGER_EIO, 2, "open %s", "/nope");
	assert_int_equal(banger_error_last()->os_errno, 2);
	assert_non_null(strstr(banger_error_last()->message, "open /nope: No such file"));
	assert_string_equal(banger_error_name(BANGER_ETRUST), "host key mismatch");
}

static void test_error_save_restore(void **state)
{
	(void)state;
	bg_error(BANGER_EVMM, "first");
	bg_error_saved s;
	bg_error_save(&s);
	bg_error(BANGER_EIO, "cleanup failed");
	bg_error_restore(&s);
	assert_int_equal(banger_error_last()->code, BANGER_EVMM);
	assert_string_equal(banger_error_last()->message, "first");
}

static void test_buf(void **state)
{
	(void)state;
	bg_buf b = BG_BUF_INIT;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(bg_buf_printf(&b, "%d,", i), 0);
	assert_true(b.len > 1000);
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	char *s = bg_buf_detach(&b);
	assert_non_null(s);
	assert_null(b.data);
	free(s);
}

static void test_buf_oom_sticky(void **state)
{
	(void)state;
	bg_buf b = BG_BUF_INIT;
	bg_alloc_fail_at(1);
	assert_int_equal(bg_buf_puts(&b, "x"), BANGER_ENOMEM);
	assert_int_equal(bg_buf_puts(&b, "y"), BANGER_ENOMEM); /* sticky */
	assert_null(bg_buf_detach(&b));
	bg_alloc_fail_at(0);
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(bg_parse_size(&v, "512"), 0);
	assert_int_equal(v, 512);
	assert_int_equal(bg_parse_size(&v, "4k"), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(bg_parse_size(&v, "10G"), 0);
	assert_int_equal(v, 10ULL << 30);
	assert_int_equal(bg_parse_size(&v, "256MiB"), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(bg_parse_size(&v, "-1"), BANGER_EINVALID);
	assert_int_equal(bg_parse_size(&v, "12Q"), BANGER_EINVALID);
	assert_int_equal(bg_parse_size(&v, "99999999999T"), BANGER_EINVALID);
	assert_int_equal(bg_parse_size(&v, ""), BANGER_EINVALID);
}

/* FIPS 180-2 test vectors, one-shot and streamed in pieces. */
static void test_sha256(void **state)
{
	(void)state;
	static const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	static const char *two = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
	const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char hex[BG_SHA256_HEX_SIZE];
	unsigned char md[BG_SHA256_LEN];
	assert_int_equal(bg_sha256_of_hex(hex, "abc", 3), 0);
	assert_string_equal(hex, abc);
	assert_int_equal(bg_sha256_of_hex(hex, "", 0), 0);
	assert_string_equal(hex, empty);
	assert_int_equal(bg_sha256_of(md, "abc", 3), 0);
	assert_int_equal(md[0], 0xba);
	assert_int_equal(md[31], 0xad);

	bg_sha256 *h;
	assert_int_equal(bg_sha256_new(&h), 0);
	for (size_t i = 0, n = strlen(msg); i < n; i += 5)
		assert_int_equal(bg_sha256_update(h, msg + i, n - i < 5 ? n - i : 5), 0);
	assert_int_equal(bg_sha256_final_hex(h, hex), 0);
	assert_string_equal(hex, two);
	/* reset: a fresh digest, raw this time */
	assert_int_equal(bg_sha256_reset(h), 0);
	assert_int_equal(bg_sha256_update(h, "ab", 2), 0);
	assert_int_equal(bg_sha256_update(h, "c", 1), 0);
	assert_int_equal(bg_sha256_final(h, md), 0);
	assert_int_equal(md[0], 0xba);
	assert_int_equal(bg_sha256_reset(h), 0);
	assert_int_equal(bg_sha256_final_hex(h, hex), 0);
	assert_string_equal(hex, empty);
	bg_sha256_free(h);
	bg_sha256_free(NULL);
}

/* The output of sh -c script (at most 255 bytes). */
static void sh_output(const char *script, char out[256])
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	size_t have = 0;
	ssize_t n;
	while ((n = read(fds[0], out + have, 255 - have)) > 0)
		have += (size_t)n;
	out[have] = '\0';
	close(fds[0]);
	waitpid(pid, NULL, 0);
}

/* Quoted words come back unchanged through a real shell, bare or not. */
static void test_shell_words(void **state)
{
	(void)state;
	const char *words[] = { "printf", "%s|", "plain", "two words", "it's", "$HOME", "a\"b", "", "*", "x\ny" };
	size_t n = sizeof(words) / sizeof(words[0]);
	char *bare = bg_shell_join(words, n, BG_SHELL_BARE);
	char *quoted = bg_shell_join(words, n, 0);
	assert_non_null(bare);
	assert_non_null(quoted);
	assert_non_null(strstr(bare, "printf '%s|' plain 'two words' 'it'\\''s' '$HOME'"));
	assert_non_null(strstr(quoted, "'printf' '%s|' 'plain' 'two words' 'it'\\''s' '$HOME'"));
	char out[256];
	sh_output(bare, out);
	assert_string_equal(out, "plain|two words|it's|$HOME|a\"b||*|x\ny|");
	sh_output(quoted, out);
	assert_string_equal(out, "plain|two words|it's|$HOME|a\"b||*|x\ny|");
	bg_free(bare);
	bg_free(quoted);
	/* a bare assignment would not be a command: quoted, it is one word */
	const char *assign[] = { "X=1" };
	char *q = bg_shell_join(assign, 1, 0);
	assert_string_equal(q, "'X=1'");
	bg_free(q);
	q = bg_shell_quote("'");
	assert_string_equal(q, "''\\'''");
	bg_free(q);
	q = bg_shell_join(NULL, 0, 0);
	assert_string_equal(q, "");
	bg_free(q);
}

static void test_atomic_write(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *path = bg_path_join(dir, "f");
	assert_int_equal(bg_write_file_atomic(path, "hello", 5, 0600), 0);
	assert_int_equal(bg_write_file_atomic(path, "world!", 6, 0600), 0);
	char *data;
	size_t len;
	assert_int_equal(bg_read_file(&data, &len, path, 100), 0);
	assert_int_equal(len, 6);
	assert_string_equal(data, "world!");
	free(data);
	assert_int_equal(bg_read_file(&data, &len, path, 3), BANGER_EINVALID);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* no temp files left behind */
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
	assert_int_equal(system(cmd), 0);
	free(path);
	test_rmrf(dir);
	free(dir);
}

static void test_remove_tree_no_follow(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *victim = test_tmpdir();
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/t/a/b' && touch '%s/keep' '%s/t/a/b/f' && ln -s '%s' '%s/t/link'",
		 dir, victim, dir, victim, dir);
	assert_int_equal(system(cmd), 0);
	char *t = bg_path_join(dir, "t");
	assert_int_equal(bg_remove_tree(t), 0);
	assert_false(bg_path_exists(t));
	char *keep = bg_path_join(victim, "keep");
	assert_true(bg_path_exists(keep)); /* the symlink was removed, not followed */
	assert_int_equal(bg_remove_tree(t), 0); /* already gone is fine */
	free(t);
	free(keep);
	test_rmrf(dir);
	test_rmrf(victim);
	free(dir);
	free(victim);
}

static void test_lock_exclusive_and_cloexec(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *path = bg_path_join(dir, "lock");
	bg_lock a = BG_LOCK_INIT, b = BG_LOCK_INIT;
	assert_int_equal(bg_lock_acquire(&a, path, 0), 0);
	int flags = fcntl(a.fd, F_GETFD);
	assert_true(flags & FD_CLOEXEC);
	pid_t pid = fork();
	if (pid == 0) {
		bg_lock c = BG_LOCK_INIT;
		_exit(bg_lock_acquire(&c, path, 50) == BANGER_EBUSY ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	bg_lock_release(&a);
	assert_int_equal(bg_lock_acquire(&b, path, 0), 0);
	bg_lock_release(&b);
	free(path);
	test_rmrf(dir);
	free(dir);
}

/* A lock held by another process (a child) until the parent closes
 * *release; returns once the child holds it. */
static pid_t hold_lock(const char *path, int *release)
{
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		bg_lock l = BG_LOCK_INIT;
		if (bg_lock_acquire(&l, path, 0) != 0)
			_exit(1);
		char c = 1;
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		(void)!read(go[0], &c, 1); /* EOF: the parent let go */
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = go[1];
	return pid;
}

typedef struct {
	int waits, stop_at;     /* cancel at this WAITING (0: never) */
	int release_fd;         /* >= 0: let the holder go at the first WAITING */
	int operation;
	char detail[256], subject[64];
} lock_watch;

static int on_lock_wait(const banger_progress *p, void *payload)
{
	lock_watch *w = payload;
	assert_int_equal(p->event, BANGER_PROGRESS_WAITING);
	assert_string_equal(p->stage, "lock");
	w->waits++;
	w->operation = p->operation;
	snprintf(w->detail, sizeof(w->detail), "%s", p->detail ? p->detail : "");
	snprintf(w->subject, sizeof(w->subject), "%s", p->subject ? p->subject : "");
	if (w->release_fd >= 0) {
		close(w->release_fd);
		w->release_fd = -1;
	}
	return w->stop_at && w->waits >= w->stop_at;
}

/* A wait for a lock another process holds reports WAITING at stage
 * "lock", naming the lock and the holder's pid, and a cancel ends it
 * with BANGER_ECANCELLED; without a callback it is the silent wait it
 * always was; a lock let go while waited for is taken. */
static void test_lock_wait_reports(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *path = bg_path_join(dir, "lock");
	int release;
	pid_t holder = hold_lock(path, &release);

	lock_watch w = { .stop_at = 3, .release_fd = -1 };
	bg_progress p = { on_lock_wait, &w, BANGER_PROGRESS_OP_IMAGE_PULL, "thing" };
	bg_lock l = BG_LOCK_INIT;
	/* 60 s: a hang guard only; the cancel ends it */
	assert_int_equal(bg_lock_acquire_reporting(&l, path, 60000, &p, "the lock of thing"), BANGER_ECANCELLED);
	assert_int_equal(l.fd, -1);
	assert_int_equal(w.waits, 3);
	assert_int_equal(w.operation, BANGER_PROGRESS_OP_IMAGE_PULL);
	assert_string_equal(w.subject, "thing");
	char want[128];
	snprintf(want, sizeof(want), "waiting for the lock of thing held by pid %d", (int)holder);
	assert_string_equal(w.detail, want);
	assert_int_equal(banger_error_last()->code, BANGER_ECANCELLED);
	assert_non_null(strstr(banger_error_last()->message, "cancelled"));

	/* no callback (none given, or a progress without one): silent, busy */
	assert_int_equal(bg_lock_acquire_reporting(&l, path, 100, NULL, "x"), BANGER_EBUSY);
	bg_progress silent = { NULL, NULL, 0, NULL };
	assert_int_equal(bg_lock_acquire_reporting(&l, path, 100, &silent, "x"), BANGER_EBUSY);
	assert_int_equal(l.fd, -1);

	/* the holder lets go while we wait: the lock is ours */
	memset(&w, 0, sizeof(w));
	w.release_fd = release;
	assert_int_equal(bg_lock_acquire_reporting(&l, path, 60000, &p, "the lock of thing"), 0);
	assert_true(l.fd >= 0);
	assert_true(w.waits >= 1);
	bg_lock_release(&l);
	int st;
	assert_int_equal(waitpid(holder, &st, 0), holder);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(path);
	test_rmrf(dir);
	free(dir);
}

static void test_run(void **state)
{
	(void)state;
	int status;
	char *out, *err;
	const char *ok[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	assert_int_equal(bg_run(&status, &out, &err, ok, 5000), 0);
	assert_int_equal(status, 3);
	assert_string_equal(out, "out\n");
	assert_string_equal(err, "err\n");
	free(out);
	free(err);
	const char *slow[] = { "sleep", "10", NULL };
	int64_t t0 = bg_now_ms();
	assert_int_equal(bg_run(&status, NULL, NULL, slow, 200), BANGER_ETIMEOUT);
	assert_true(bg_now_ms() - t0 < 5000);
	const char *missing[] = { "definitely-not-a-program-xyz", NULL };
	assert_int_equal(bg_run(&status, NULL, NULL, missing, 1000), BANGER_EUNSUPPORTED);
	assert_int_equal(bg_run_checked(ok, 5000), BANGER_ERROR);
	assert_non_null(strstr(banger_error_last()->message, "status 3: err"));
	/* Ctrl-C at the terminal reached the program: a cancel, not a failure */
	const char *interrupted[] = { "sh", "-c", "kill -INT $$", NULL };
	assert_int_equal(bg_run(&status, NULL, NULL, interrupted, 5000), BANGER_ECANCELLED);
	assert_int_equal(bg_run_checked(interrupted, 5000), BANGER_ECANCELLED);
	assert_non_null(strstr(banger_error_last()->message, "cancelled: sh was interrupted"));
	/* killed by another signal: still the program's status */
	const char *killed[] = { "sh", "-c", "kill -TERM $$", NULL };
	assert_int_equal(bg_run(&status, NULL, NULL, killed, 5000), 0);
	assert_int_equal(status, 128 + SIGTERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_record),
		cmocka_unit_test(test_error_save_restore),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_buf_oom_sticky),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_shell_words),
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_remove_tree_no_follow),
		cmocka_unit_test(test_lock_exclusive_and_cloexec),
		cmocka_unit_test(test_lock_wait_reports),
		cmocka_unit_test(test_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
