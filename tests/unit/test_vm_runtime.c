/* Runtime vs handles: scratch file, cache, rediscovery, liveness and the
 * exact teardown sequence of reconcile, through a recording host. */
#include "ctx_fixture.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../libbanger/vm/vm.h"
#include "fake_host.h"

typedef struct {
	char *dir;
	banger_ctx *ctx;
	fake_host fh;
	bg_host_ops ops;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->ctx = test_ctx_open(&f->dir, "state");
	f->ops = fake_host_ops(&f->fh);
	bg_env_set_host_ops(&f->ctx->env, &f->ops);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	test_ctx_close(f->ctx, f->dir);
	free(f);
	return 0;
}

/* Record a VM the way create does: row + dir + paths from the id. */
static void add_vm(fixture *f, bg_vm_record *vm, const char *id, const char *name, const char *state, int nat)
{
	bg_vm_paths p;
	assert_int_equal(bg_layout_vm_paths(&p, &f->ctx->env.layout, id), 0);
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->id, sizeof(vm->id), "%s", id);
	vm->name = strdup(name);
	vm->state = strdup(state);
	vm->vmm = strdup("qemu");
	vm->api_sock = strdup(p.api_sock);
	vm->vm_dir = strdup(p.dir);
	vm->nat = nat;
	vm->vcpus = 1;
	vm->memory_mib = 128;
	assert_int_equal(bg_mkdir_p(p.dir, 0700), 0);
	assert_int_equal(bg_store_vm_insert(&f->ctx->env.store, vm), 0);
	bg_vm_paths_free(&p);
}

static pid_t spawn_named(const char *needle)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("sleep", needle, "60", (char *)NULL);
		_exit(127);
	}
	/* wait until exec has happened */
	for (int i = 0; i < 200 && !bg_proc_cmdline_has(pid, needle); i++)
		bg_sleep_ms(5);
	return pid;
}

static void test_scratch_round_trip(void **state)
{
	fixture *f = *state;
	bg_vm_handles h, back;
	memset(&h, 0, sizeof(h));
	h.pid = 4242;
	strcpy(h.tap, "bgabcd01234567");
	strcpy(h.base_loop, "/dev/loop3");
	strcpy(h.cow_loop, "/dev/loop4");
	strcpy(h.dm_name, "bg-x-01234567");
	strcpy(h.dm_dev, "/dev/mapper/bg-x-01234567");
	strcpy(h.overlay, "dm-snapshot");
	h.nat = true;
	char *path = bg_path_join(f->dir, "handles.json");
	assert_int_equal(bg_handles_write(path, &h), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(bg_handles_read(path, &back), 0);
	assert_memory_equal(&h, &back, sizeof(h));
	free(path);
}

static void test_scratch_missing_and_corrupt(void **state)
{
	fixture *f = *state;
	bg_vm_handles h;
	char *path = bg_path_join(f->dir, "nope.json");
	assert_int_equal(bg_handles_read(path, &h), BANGER_ENOTFOUND);
	free(path);
	const char *bad[] = {
		"{", "[]", "{\"version\":2}", "{\"version\":1,\"pid\":\"x\"}",
		"{\"version\":1,\"pid\":-5}", "{\"version\":1,\"tap\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		"{\"version\":1,\"base_loop\":\"relative\"}", "{\"version\":1,\"nat\":1}",
		"{\"version\":1,\"version\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&h, 0x55, sizeof(h));
		assert_int_equal(bg_handles_parse(bad[i], strlen(bad[i]), &h), BANGER_EINVALID);
		assert_non_null(strstr(banger_error_last()->message, "handles.json"));
		assert_int_equal(h.pid, 0); /* zeroed on failure */
	}
}

static void test_corrupt_scratch_still_reconciles(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "0000c0de", "broken", BG_VM_RUNNING, 0);
	bg_vm_paths p;
	assert_int_equal(bg_layout_vm_paths(&p, &f->ctx->env.layout, vm.id), 0);
	assert_int_equal(bg_write_file_atomic(p.handles, "garbage{", 8, 0600), 0);
	unsigned fixed = 0;
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, &fixed), 0);
	assert_int_equal(fixed, 1);
	/* the tap from the deterministic name was still torn down */
	bool saw_tap = false;
	for (int i = 0; i < f->fh.n; i++)
		if (strstr(f->fh.log[i], "tap_delete") && strstr(f->fh.log[i], p.tap))
			saw_tap = true;
	assert_true(saw_tap);
	bg_vm_record got;
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &got, "broken"), 0);
	assert_string_equal(got.state, BG_VM_STOPPED);
	assert_non_null(got.last_error);
	bg_vm_record_clear(&got);
	bg_vm_paths_free(&p);
	bg_vm_record_clear(&vm);
}

typedef struct {
	banger_ctx *ctx;
	int base;
} thread_arg;

static void *hammer(void *p)
{
	thread_arg *a = p;
	for (int i = 0; i < 2000; i++) {
		char id[9];
		snprintf(id, sizeof(id), "%08x", (unsigned)(a->base + i % 16));
		bg_vm_handles h;
		memset(&h, 0, sizeof(h));
		h.pid = a->base + i;
		bg_handles_cache_put(a->ctx, id, &h);
		bg_vm_handles out;
		if (bg_handles_cache_get(a->ctx, id, &out) && out.pid < a->base)
			return (void *)1;
		if (i % 7 == 0)
			bg_handles_cache_drop(a->ctx, id);
	}
	return NULL;
}

static void test_cache_threads(void **state)
{
	fixture *f = *state;
	pthread_t t[4];
	thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i].ctx = f->ctx;
		args[i].base = (i + 1) * 100000;
		pthread_create(&t[i], NULL, hammer, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}
}

static void test_rediscover_prefers_proc(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "0000beef", "live", BG_VM_RUNNING, 0);
	pid_t pid = spawn_named(vm.api_sock);
	/* the scratch file says another (dead) pid */
	bg_vm_handles h;
	memset(&h, 0, sizeof(h));
	h.pid = 999999;
	strcpy(h.tap, "bgscratch");
	assert_int_equal(bg_handles_save(f->ctx, &vm, &h), 0);
	bg_handles_cache_drop(f->ctx, vm.id);
	bg_vm_handles got;
	assert_int_equal(bg_vm_rediscover(f->ctx, &vm, &got, NULL, 0), 0);
	assert_int_equal(got.pid, pid);             /* /proc wins */
	assert_string_equal(got.tap, "bgscratch");  /* scratch contents kept */
	pid_t live;
	assert_true(bg_vm_alive(f->ctx, &vm, &live));
	assert_int_equal(live, pid);
	banger_vm *pub = NULL; /* the public call says the same of its snapshot */
	assert_int_equal(banger_vm_lookup(&pub, f->ctx, vm.id), 0);
	assert_int_equal(banger_vm_is_alive(f->ctx, pub), 1);
	banger_vm_free(pub);

	/* a state other than running is never alive */
	free(vm.state);
	vm.state = strdup(BG_VM_STOPPED);
	assert_false(bg_vm_alive(f->ctx, &vm, NULL));
	free(vm.state);
	vm.state = strdup(BG_VM_RUNNING);

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_false(bg_vm_alive(f->ctx, &vm, NULL));
	/* dead process: rediscover still returns the scratch contents */
	assert_int_equal(bg_vm_rediscover(f->ctx, &vm, &got, NULL, 0), 0);
	assert_string_equal(got.tap, "bgscratch");
	bg_vm_record_clear(&vm);
}

/* A reused pid (a live process that does not name our socket) is not
 * alive and is never killed. */
static void test_pid_reuse_not_alive(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "0000abba", "reuse", BG_VM_RUNNING, 0);
	pid_t other = spawn_named("/somewhere/else.sock");
	bg_vm_handles h;
	memset(&h, 0, sizeof(h));
	h.pid = other;
	assert_int_equal(bg_handles_save(f->ctx, &vm, &h), 0);
	assert_false(bg_vm_alive(f->ctx, &vm, NULL));
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, NULL), 0);
	for (int i = 0; i < f->fh.n; i++)
		assert_null(strstr(f->fh.log[i], "terminate"));
	assert_int_equal(kill(other, 0), 0); /* still running */
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	bg_vm_record_clear(&vm);
}

/* reconcile writes scratch -> reads it -> finds the process gone ->
 * issues the teardown in order. */
static void test_reconcile_teardown_order(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "00001234", "dead", BG_VM_RUNNING, 1);
	bg_vm_handles h;
	memset(&h, 0, sizeof(h));
	h.pid = 999998; /* gone */
	strcpy(h.tap, "bgtap1234");
	strcpy(h.base_loop, "/dev/loop7");
	strcpy(h.cow_loop, "/dev/loop8");
	strcpy(h.dm_name, "bg-dm-1234");
	h.nat = true;
	assert_int_equal(bg_handles_save(f->ctx, &vm, &h), 0);
	bg_handles_cache_drop(f->ctx, vm.id);
	unsigned fixed = 0;
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, &fixed), 0);
	assert_int_equal(fixed, 1);
	const char *want[] = {
		"nat_remove 00001234", "dm_remove bg-dm-1234", "loop_detach /dev/loop8",
		"loop_detach /dev/loop7", "tap_delete bgtap1234",
	};
	assert_int_equal(f->fh.n, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(f->fh.log[i], want[i]);
	bg_vm_record got;
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &got, "dead"), 0);
	assert_string_equal(got.state, BG_VM_STOPPED);
	assert_non_null(strstr(got.last_error, "exited unexpectedly"));
	bg_vm_record_clear(&got);
	/* nothing changed: a second reconcile does nothing */
	f->fh.n = 0;
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, &fixed), 0);
	assert_int_equal(fixed, 0);
	assert_int_equal(f->fh.n, 0);
	bg_vm_record_clear(&vm);
}

/* A VM left "creating" by a killed process is rolled back: process
 * killed first, objects torn down, dir and row gone. */
static void test_reconcile_rolls_back_creating(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "0000cafe", "half", BG_VM_CREATING, 0);
	pid_t pid = spawn_named(vm.api_sock);
	unsigned fixed = 0;
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, &fixed), 0);
	assert_true(fixed >= 1);
	assert_true(strncmp(f->fh.log[0], "terminate ", 10) == 0);
	assert_false(bg_proc_alive(pid));
	bg_vm_record got;
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &got, "half"), BANGER_ENOTFOUND);
	assert_false(bg_path_exists(vm.vm_dir));
	bg_vm_record_clear(&vm);
}

/* ...unless another process holds the VM's lock: then it is left alone. */
static void test_reconcile_respects_lock(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "0000f00d", "busy", BG_VM_CREATING, 0);
	bg_vm_paths p;
	assert_int_equal(bg_layout_vm_paths(&p, &f->ctx->env.layout, vm.id), 0);
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t holder = fork();
	if (holder == 0) {
		bg_lock l = BG_LOCK_INIT;
		if (bg_lock_acquire(&l, p.lock, 1000))
			_exit(1);
		if (write(go[1], "x", 1) != 1)
			_exit(1);
		sleep(30);
		_exit(0);
	}
	char c;
	assert_int_equal(read(go[0], &c, 1), 1);
	assert_int_equal(bg_vm_reconcile(f->ctx, false, NULL, NULL), 0);
	assert_int_equal(f->fh.n, 0);
	bg_vm_record got;
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &got, "busy"), 0);
	assert_string_equal(got.state, BG_VM_CREATING);
	bg_vm_record_clear(&got);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	close(go[0]);
	close(go[1]);
	bg_vm_paths_free(&p);
	bg_vm_record_clear(&vm);
}

/* The sweep removes objects with our names that no VM owns. */
static void test_sweep_strays(void **state)
{
	fixture *f = *state;
	bg_vm_record vm;
	add_vm(f, &vm, "00005555", "stopped-one", BG_VM_STOPPED, 0);
	char prefix[8], owned_tap[32], stray_tap[32];
	bg_layout_tap_prefix(&f->ctx->env.layout, prefix);
	snprintf(owned_tap, sizeof(owned_tap), "%s%s", prefix, "00005555");
	snprintf(stray_tap, sizeof(stray_tap), "%s%s", prefix, "99999999");
	f->fh.taps[0] = owned_tap; /* a stopped VM owns no tap either */
	f->fh.taps[1] = stray_tap;
	f->fh.loops[0] = "/dev/loop42";
	f->fh.nat_ids[0] = "77777777";
	unsigned fixed = 0;
	assert_int_equal(bg_vm_reconcile(f->ctx, true, NULL, &fixed), 0);
	assert_int_equal(fixed, 4);
	bool t1 = false, t2 = false, l = false, n = false;
	for (int i = 0; i < f->fh.n; i++) {
		t1 |= strstr(f->fh.log[i], owned_tap) != NULL;
		t2 |= strstr(f->fh.log[i], stray_tap) != NULL;
		l |= strcmp(f->fh.log[i], "loop_detach /dev/loop42") == 0;
		n |= strcmp(f->fh.log[i], "nat_remove 77777777") == 0;
	}
	assert_true(t1 && t2 && l && n);
	bg_vm_record_clear(&vm);
}

/* What a reconcile's progress callback saw; it says stop at the
 * stop_at'th STEP (0: never). */
typedef struct {
	int operation;
	int steps, stop_at, last_event;
	char stages[256];
} reconcile_watch;

static reconcile_watch watch_for(int operation, int stop_at)
{
	reconcile_watch w;
	memset(&w, 0, sizeof(w));
	w.operation = operation;
	w.stop_at = stop_at;
	return w;
}

static int on_reconcile(const banger_progress *p, void *payload)
{
	reconcile_watch *w = payload;
	assert_int_equal(p->operation, w->operation);
	w->last_event = p->event;
	if (p->event != BANGER_PROGRESS_STEP)
		return 0;
	assert_non_null(p->subject);
	assert_non_null(p->detail);
	size_t n = strlen(w->stages);
	snprintf(w->stages + n, sizeof(w->stages) - n, "%s%s", n ? "," : "", p->stage);
	return ++w->steps == w->stop_at;
}

static bool logged(const fake_host *fh, const char *line)
{
	for (int i = 0; i < fh->n; i++)
		if (strcmp(fh->log[i], line) == 0)
			return true;
	return false;
}

/* Every object acted on is a STEP; a stop is heeded before the next
 * object (never inside one VM's teardown), with BANGER_ECANCELLED, and
 * what was done stays done; the next reconcile does the rest. */
static void test_reconcile_reports_and_cancels(void **state)
{
	fixture *f = *state;
	bg_vm_record a, b;
	add_vm(f, &a, "0000aaa1", "dead-a", BG_VM_RUNNING, 0);
	add_vm(f, &b, "0000bbb2", "dead-b", BG_VM_RUNNING, 0);
	char prefix[8], tap1[32], tap2[32];
	bg_layout_tap_prefix(&f->ctx->env.layout, prefix);
	snprintf(tap1, sizeof(tap1), "tap_delete %s%s", prefix, "99999991");
	snprintf(tap2, sizeof(tap2), "tap_delete %s%s", prefix, "99999992");
	f->fh.taps[0] = tap1 + strlen("tap_delete ");
	f->fh.taps[1] = tap2 + strlen("tap_delete ");

	/* stop at the first VM: the second is untouched, no sweep */
	reconcile_watch w = watch_for(BANGER_PROGRESS_OP_VM_RECONCILE, 1);
	banger_vm_reconcile_options o = BANGER_VM_RECONCILE_OPTIONS_INIT;
	o.flags = BANGER_RECONCILE_SWEEP;
	o.progress = on_reconcile;
	o.progress_payload = &w;
	assert_int_equal(banger_vm_reconcile(f->ctx, &o), BANGER_ECANCELLED);
	assert_non_null(strstr(banger_error_last()->message, "cancelled"));
	assert_int_equal(w.steps, 1);
	assert_string_equal(w.stages, "reconcile");
	bg_vm_record ga, gb;
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &ga, "dead-a"), 0);
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &gb, "dead-b"), 0);
	/* one of them, whichever came first */
	assert_int_equal((strcmp(ga.state, BG_VM_STOPPED) == 0) + (strcmp(gb.state, BG_VM_STOPPED) == 0), 1);
	bg_vm_record_clear(&ga);
	bg_vm_record_clear(&gb);
	assert_false(logged(&f->fh, tap1) || logged(&f->fh, tap2));

	/* stop at the first stray of the sweep: the second stays */
	w = watch_for(BANGER_PROGRESS_OP_VM_RECONCILE, 2);
	assert_int_equal(banger_vm_reconcile(f->ctx, &o), BANGER_ECANCELLED);
	assert_string_equal(w.stages, "reconcile,sweep");
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &ga, "dead-a"), 0);
	assert_int_equal(bg_store_vm_get(&f->ctx->env.store, &gb, "dead-b"), 0);
	assert_true(strcmp(ga.state, BG_VM_STOPPED) == 0 && strcmp(gb.state, BG_VM_STOPPED) == 0);
	bg_vm_record_clear(&ga);
	bg_vm_record_clear(&gb);
	assert_true(logged(&f->fh, tap1) && !logged(&f->fh, tap2));

	/* no stop: the rest, then DONE */
	w = watch_for(BANGER_PROGRESS_OP_VM_RECONCILE, 0);
	assert_true(banger_vm_reconcile(f->ctx, &o) >= 1);
	assert_true(logged(&f->fh, tap2));
	assert_int_equal(w.last_event, BANGER_PROGRESS_DONE);
	bg_vm_record_clear(&a);
	bg_vm_record_clear(&b);
}

/* Recovery reports each record and stops before the next one; what it
 * recorded stays, and a second recovery adds the rest. */
static void test_recover_reports_and_cancels(void **state)
{
	fixture *f = *state;
	bg_vm_record a, b;
	add_vm(f, &a, "0000aaa3", "lost-a", BG_VM_STOPPED, 0);
	add_vm(f, &b, "0000bbb4", "lost-b", BG_VM_STOPPED, 0);
	/* the rows are lost, the VMs' own records are not */
	assert_int_equal(bg_copy_write_vm(f->ctx->env.store.id, &a, NULL), 0);
	assert_int_equal(bg_copy_write_vm(f->ctx->env.store.id, &b, NULL), 0);
	assert_int_equal(bg_store_vm_delete(&f->ctx->env.store, a.id), 0);
	assert_int_equal(bg_store_vm_delete(&f->ctx->env.store, b.id), 0);

	reconcile_watch w = watch_for(BANGER_PROGRESS_OP_STORE_RECOVER, 1);
	banger_store_recover_options o = BANGER_STORE_RECOVER_OPTIONS_INIT;
	o.progress = on_reconcile;
	o.progress_payload = &w;
	assert_int_equal(banger_store_recover(f->ctx, &o), BANGER_ECANCELLED);
	assert_non_null(strstr(banger_error_last()->message, "cancelled"));
	assert_int_equal(w.steps, 1);
	assert_string_equal(w.stages, "recover");
	bg_vm_record *vms = NULL;
	size_t n = 0;
	assert_int_equal(bg_store_vm_list(&f->ctx->env.store, &vms, &n), 0);
	assert_int_equal(n, 1);
	bg_vm_records_free(vms, n);

	w = watch_for(BANGER_PROGRESS_OP_STORE_RECOVER, 0);
	assert_int_equal(banger_store_recover(f->ctx, &o), 1);
	assert_int_equal(w.last_event, BANGER_PROGRESS_DONE);
	assert_int_equal(bg_store_vm_list(&f->ctx->env.store, &vms, &n), 0);
	assert_int_equal(n, 2);
	bg_vm_records_free(vms, n);
	bg_vm_record_clear(&a);
	bg_vm_record_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scratch_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch_missing_and_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_scratch_still_reconciles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rediscover_prefers_proc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pid_reuse_not_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_teardown_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_rolls_back_creating, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_respects_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_strays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_reports_and_cancels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_reports_and_cancels, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
