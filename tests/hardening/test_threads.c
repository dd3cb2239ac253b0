/* Threads, where the API allows them (docs/conventions.md: a context is
 * used by one thread at a time; the handle cache is the one part of a
 * context other threads may touch; calls without a context are
 * thread-safe; several contexts may share a state root):
 *
 *   - the mutex-guarded handle cache of one context, hammered by 8
 *     threads putting, getting and dropping entries: every entry read is
 *     one that some thread wrote whole (no torn entries), nothing crashes;
 *   - the thread-local last error: each thread sees its own;
 *   - banger_version and banger_host_features from many threads;
 *   - 8 threads, each with its own context on one state root, pinning
 *     host keys and importing/removing kernels at once: no error, every
 *     pin present, the store sound. */
#include "../unit/helpers.h"
#include "../../libbanger/vm/vm.h"
#include "../../libbanger/kernel/kernel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#define THREADS 8
#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9zBxWgE7nveVEKZGojDXDJcEnn3GdrEoY+GMcv"

static char *dir, *state;
static banger_ctx *shared;
static atomic_int torn, errors;

/* ---- the handle cache ---- */

static void fill(bg_vm_handles *h, unsigned k)
{
	memset(h, 0, sizeof(*h));
	h->pid = (pid_t)(1000 + k);
	snprintf(h->tap, sizeof(h->tap), "t%u", k);
	snprintf(h->base_loop, sizeof(h->base_loop), "/dev/loop%u", k);
	snprintf(h->cow_loop, sizeof(h->cow_loop), "/dev/loop%u", k + 1);
	snprintf(h->dm_name, sizeof(h->dm_name), "dm%u", k);
	snprintf(h->dm_dev, sizeof(h->dm_dev), "/dev/mapper/dm%u", k);
	snprintf(h->overlay, sizeof(h->overlay), "copy");
	h->nat = k & 1;
}

static void *cache_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < 20000; i++) {
		seed = seed * 1103515245u + 12345u;
		char id[9];
		snprintf(id, sizeof(id), "%08x", (seed >> 8) % 16);
		unsigned op = (seed >> 4) % 4;
		if (op == 0) {
			bg_handles_cache_drop(shared, id);
		} else if (op == 1) {
			bg_vm_handles h;
			fill(&h, seed % 1000);
			if (bg_handles_cache_put(shared, id, &h) != 0)
				atomic_fetch_add(&errors, 1);
		} else {
			bg_vm_handles h, want;
			if (bg_handles_cache_get(shared, id, &h)) {
				fill(&want, (unsigned)(h.pid - 1000));
				if (memcmp(&h, &want, sizeof(h)) != 0)
					atomic_fetch_add(&torn, 1);
			}
		}
	}
	return NULL;
}

static void test_handle_cache(void **st)
{
	(void)st;
	pthread_t t[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, cache_worker, (void *)(i * 7919 + 1)), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&torn), 0);
	assert_int_equal(atomic_load(&errors), 0);
	assert_true(bg_vm_cache_count(shared) <= 16);
}

/* ---- thread-local errors and context-free calls ---- */

static void *error_worker(void *arg)
{
	int k = (int)(intptr_t)arg;
	char host[64];
	for (int i = 0; i < 2000; i++) {
		snprintf(host, sizeof(host), "thread-%d-%d", k, i);
		/* a key line that cannot parse: an error naming nothing shared */
		int v;
		char bad[64];
		snprintf(bad, sizeof(bad), "ssh-ed25519 not-base64-%d", k);
		int rc = banger_known_hosts_check_line(&v, "/nonexistent/known_hosts", host, 22, bad);
		const banger_error *e = banger_error_last();
		if (rc != BANGER_EINVALID || !e || e->code != rc)
			atomic_fetch_add(&errors, 1);
		/* set a distinctive error, then make sure another thread's did not
		 * replace it */
		bg_error(BANGER_ENOTFOUND, "thread %d iteration %d", k, i);
		char want[64];
		snprintf(want, sizeof(want), "thread %d iteration %d", k, i);
		if (strcmp(banger_error_last()->message, want) != 0)
			atomic_fetch_add(&torn, 1);
		uint32_t f;
		if (banger_host_features(&f) != 0 || !banger_version() || !*banger_version())
			atomic_fetch_add(&errors, 1);
		banger_error_clear();
	}
	return NULL;
}

static void test_errors_and_free_calls(void **st)
{
	(void)st;
	atomic_store(&torn, 0);
	atomic_store(&errors, 0);
	pthread_t t[THREADS];
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, error_worker, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&torn), 0);
	assert_int_equal(atomic_load(&errors), 0);
}

/* ---- one context per thread, one state root ---- */

static void *ctx_worker(void *arg)
{
	int k = (int)(intptr_t)arg;
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = state;
	banger_ctx *ctx = NULL;
	if (banger_ctx_open(&ctx, &o) != 0) {
		fprintf(stderr, "thread %d: open: %s\n", k, banger_error_last()->message);
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	char *kernel = bg_path_join(dir, "vmlinux");
	for (int i = 0; i < 10; i++) {
		char n1[64], n2[64], kname[32];
		snprintf(n1, sizeof(n1), "t%d-%d.example", k, i);
		snprintf(n2, sizeof(n2), "10.9.%d.%d", k, i);
		const char *names[] = { n1, n2 };
		int rc = banger_known_hosts_pin(banger_ssh_known_hosts_path(ctx), names, 2, 22, KEY_A);
		if (rc) {
			fprintf(stderr, "thread %d: pin: %s\n", k, banger_error_last()->message);
			atomic_fetch_add(&errors, 1);
		}
		snprintf(kname, sizeof(kname), "k%d-%d", k, i);
		bg_kernel_record r;
		if ((rc = bg_kernel_import(&ctx->env, kname, kernel, NULL, NULL, NULL, &r)) != 0) {
			fprintf(stderr, "thread %d: import %s: %s\n", k, kname, banger_error_last()->message);
			atomic_fetch_add(&errors, 1);
			continue;
		}
		bg_kernel_record_clear(&r);
		if (i % 2 == 0 && (rc = bg_kernel_remove(&ctx->env, kname)) != 0) {
			fprintf(stderr, "thread %d: remove %s: %s\n", k, kname, banger_error_last()->message);
			atomic_fetch_add(&errors, 1);
		}
	}
	free(kernel);
	banger_ctx_close(ctx);
	return NULL;
}

static void test_contexts_per_thread(void **st)
{
	(void)st;
	atomic_store(&errors, 0);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "cp /bin/true '%s/vmlinux'", dir);
	assert_int_equal(system(cmd), 0);
	pthread_t t[THREADS];
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ctx_worker, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&errors), 0);

	const char *kh = banger_ssh_known_hosts_path(shared);
	for (int k = 0; k < THREADS; k++)
		for (int i = 0; i < 10; i++) {
			char n1[64], n2[64];
			snprintf(n1, sizeof(n1), "t%d-%d.example", k, i);
			snprintf(n2, sizeof(n2), "10.9.%d.%d", k, i);
			int v = -1;
			assert_int_equal(banger_known_hosts_check_line(&v, kh, n1, 22, KEY_A), 0);
			assert_int_equal(v, BANGER_HOSTKEY_MATCH);
			assert_int_equal(banger_known_hosts_check_line(&v, kh, n2, 22, KEY_A), 0);
			assert_int_equal(v, BANGER_HOSTKEY_MATCH);
		}
	/* half the kernels stayed, each recorded once, the store is sound */
	bg_kernel_record *ks = NULL;
	size_t n = 0;
	assert_int_equal(bg_store_kernel_list(&shared->env.store, &ks, &n), 0);
	assert_int_equal(n, THREADS * 5);
	for (size_t i = 0; i < n; i++)
		bg_kernel_record_clear(&ks[i]);
	bg_free(ks);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(shared->env.store.db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
	sqlite3_finalize(q);
}

static int setup(void **st)
{
	(void)st;
	dir = test_tmpdir();
	state = bg_path_join(dir, "state");
	char *run = bg_path_join(dir, "run");
	setenv("BANGER_RUNTIME_DIR", run, 1);
	free(run);
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = state;
	assert_int_equal(banger_ctx_open(&shared, &o), 0);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	banger_ctx_close(shared);
	test_rmrf(dir);
	free(dir);
	free(state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handle_cache),
		cmocka_unit_test(test_errors_and_free_calls),
		cmocka_unit_test(test_contexts_per_thread),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
