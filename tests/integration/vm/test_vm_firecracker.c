/* The VM lifecycle through the public API against the Firecracker API
 * fake: create -> list -> stop -> start -> stats -> delete, checking the
 * requests banger sent and the kernel objects it left (none). */
#include "vm_fixture.h"

#include "../../api/lock_holder.h"

#include <jansson.h>
#include <signal.h>

static const banger_vm_delete_options FORCE_DELETE = { BANGER_VM_DELETE_OPTIONS_VERSION, 1 };

static vm_fixture F;

static int setup(void **state)
{
	(void)state;
	fx_setup(&F);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_teardown(&F);
	return 0;
}

/* Requests the fake recorded, as "METHOD /path" lines. */
static char *requests(const char *api_sock, json_t **bodies)
{
	char *path = bg_sprintf("%s.requests.jsonl", api_sock);
	char *text = NULL;
	assert_int_equal(bg_read_file(&text, NULL, path, 1 << 20), 0);
	bg_buf out = BG_BUF_INIT;
	json_t *arr = json_array();
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *o = json_loads(line, 0, NULL);
		assert_non_null(o);
		bg_buf_printf(&out, "%s %s\n", json_string_value(json_object_get(o, "method")),
			      json_string_value(json_object_get(o, "path")));
		json_array_append_new(arr, o);
	}
	free(text);
	free(path);
	if (bodies)
		*bodies = arr;
	else
		json_decref(arr);
	return bg_buf_detach(&out);
}

static json_t *body_of(json_t *arr, const char *path)
{
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o)
		if (strcmp(json_string_value(json_object_get(o, "path")), path) == 0)
			return json_object_get(o, "body");
	return NULL;
}

static void test_lifecycle(void **state)
{
	(void)state;
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "box";
	o.image = "testimg";
	o.nat = 1;
	o.no_wait = 1; /* the fake boots no guest: there is no sshd to wait for */
	banger_vm *vm = NULL;
	int rc = banger_vm_create(&vm, F.ctx, &o);
	if (rc)
		fail_msg("create: %s", banger_error_last()->message);
	assert_int_equal(banger_vm_state(vm), BANGER_VM_STATE_RUNNING);
	assert_string_equal(banger_vm_state_name(banger_vm_state(vm)), "running");
	assert_string_equal(banger_vm_vmm(vm), "firecracker");
	assert_string_equal(banger_vm_dns_name(vm), "box.vm");
	assert_string_equal(banger_vm_guest_ip(vm), "172.29.0.2");
	assert_string_equal(banger_vm_mac(vm), "06:00:ac:1d:00:02");
	assert_int_equal(banger_vm_vsock_cid(vm), 3);
	assert_int_equal(banger_vm_is_alive(F.ctx, vm), 1);
	assert_int_equal(fx_taps(), 1);
	assert_int_equal(fx_procs(&F), 1);
	assert_int_equal(fx_nat_rules(), 3);

	/* the exact sequence, in Firecracker's order */
	json_t *bodies;
	char *seq = requests(bg_vm_public_record(vm)->api_sock, &bodies);
	assert_string_equal(seq,
		"PUT /metrics\nPUT /machine-config\nPUT /boot-source\nPUT /drives/rootfs\n"
		"PUT /drives/work\nPUT /drives/identity\nPUT /network-interfaces/eth0\nPUT /vsock\n"
		"PUT /actions\n");
	free(seq);
	const char *args = json_string_value(json_object_get(body_of(bodies, "/boot-source"), "boot_args"));
	assert_non_null(strstr(args, "ip=172.29.0.2::172.29.0.1:255.255.255.252:box:eth0:off"));
	assert_non_null(strstr(args, "pci=off"));
	assert_null(strstr(args, "root="));
	assert_true(json_is_true(json_object_get(body_of(bodies, "/drives/rootfs"), "is_root_device")));
	assert_true(json_is_true(json_object_get(body_of(bodies, "/drives/identity"), "is_read_only")));
	assert_string_equal(json_string_value(json_object_get(body_of(bodies, "/network-interfaces/eth0"), "guest_mac")),
			    "06:00:ac:1d:00:02");
	assert_int_equal(json_integer_value(json_object_get(body_of(bodies, "/vsock"), "guest_cid")), 3);
	json_decref(bodies);

	/* the host key was pinned before boot, under both names */
	int verdict = -1;
	char *kh = bg_path_join(F.state, "ssh/known_hosts");
	char *pins = NULL;
	assert_int_equal(bg_read_file(&pins, NULL, kh, 1 << 20), 0);
	assert_non_null(strstr(pins, "box.vm ssh-ed25519 "));
	assert_non_null(strstr(pins, "172.29.0.2 ssh-ed25519 "));
	free(pins);
	(void)verdict;

	/* list */
	banger_vm_list *l;
	assert_int_equal(banger_vm_list_all(&l, F.ctx), 0);
	assert_int_equal(banger_vm_list_count(l), 1);
	banger_vm_list_free(l);

	/* stats carry Firecracker's metrics */
	char *stats = NULL;
	assert_int_equal(banger_vm_stats(&stats, F.ctx, "box"), 0);
	json_t *st = json_loads(stats, 0, NULL);
	assert_non_null(st);
	assert_true(json_is_true(json_object_get(st, "alive")));
	assert_true(json_is_object(json_object_get(st, "vmm_metrics")));
	json_decref(st);
	banger_free(stats);

	/* stop: graceful (SendCtrlAltDel), then nothing left */
	assert_int_equal(banger_vm_stop(F.ctx, "box", NULL), 0);
	seq = requests(bg_vm_public_record(vm)->api_sock, NULL);
	assert_non_null(strstr(seq, "PUT /actions\nPUT /actions\n")); /* InstanceStart, SendCtrlAltDel */
	free(seq);
	fx_assert_clean(&F);
	banger_vm *again;
	assert_int_equal(banger_vm_lookup(&again, F.ctx, "box"), 0);
	assert_int_equal(banger_vm_state(again), BANGER_VM_STATE_STOPPED);
	assert_int_equal(banger_vm_is_alive(F.ctx, again), 0);
	banger_vm_free(again);

	/* start again, then delete while running (force) */
	banger_vm_start_options so = BANGER_VM_START_OPTIONS_INIT;
	so.no_wait = 1;
	assert_int_equal(banger_vm_start(F.ctx, "box", &so), 0);
	assert_int_equal(fx_procs(&F), 1);
	assert_int_equal(banger_vm_delete(F.ctx, "box", NULL), BANGER_ESTATE);
	assert_int_equal(banger_vm_delete(F.ctx, "box", &FORCE_DELETE), 0);
	fx_assert_clean(&F);
	assert_false(bg_path_exists(bg_vm_public_record(vm)->vm_dir));
	assert_int_equal(banger_vm_lookup(&again, F.ctx, "box"), BANGER_ENOTFOUND);
	assert_int_equal(bg_read_file(&pins, NULL, kh, 1 << 20), 0);
	assert_null(strstr(pins, "box.vm"));
	assert_null(strstr(pins, "172.29.0.2"));
	free(pins);
	free(kh);
	banger_vm_free(vm);
}

/* A request Firecracker rejects fails create with its fault_message and
 * rolls back everything: no dir, no row, no tap, no process. */
static void test_rejection_rolls_back(void **state)
{
	(void)state;
	setenv("FC_FAKE_FAIL", "PUT /drives/work", 1);
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "bad";
	o.image = "testimg";
	o.no_wait = 1;
	int rc = banger_vm_create(NULL, F.ctx, &o);
	unsetenv("FC_FAKE_FAIL");
	assert_int_equal(rc, BANGER_EVMM);
	const char *msg = banger_error_last()->message;
	assert_non_null(strstr(msg, "VMM configuration failed"));
	banger_vm *vm;
	assert_int_equal(banger_vm_lookup(&vm, F.ctx, "bad"), BANGER_ENOTFOUND);
	fx_assert_clean(&F);
	char *vms = bg_path_join(F.state, "vms");
	assert_int_equal(fx_count("ls -A '%s' | wc -l", vms), 0);
	free(vms);
}

/* A kernel the VMM cannot boot fails before anything is created. */
static void test_capability_checked_first(void **state)
{
	(void)state;
	char *bz = bg_path_join(F.dir, "bzImage");
	char buf[4096];
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 0x202, "HdrS", 4);
	assert_int_equal(bg_write_file_atomic(bz, buf, sizeof(buf), 0644), 0);
	bg_kernel_record kr;
	memset(&kr, 0, sizeof(kr));
	assert_int_equal(bg_kernel_import(&F.ctx->env, "bzk", bz, NULL, NULL, NULL, &kr), 0);
	bg_kernel_record_clear(&kr);
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "bz";
	o.image = "testimg";
	o.kernel = "bzk";
	o.no_wait = 1;
	assert_int_equal(banger_vm_create(NULL, F.ctx, &o), BANGER_EUNSUPPORTED);
	char *vms = bg_path_join(F.state, "vms");
	assert_int_equal(fx_count("ls -A '%s' | wc -l", vms), 0);
	free(vms);
	fx_assert_clean(&F);
	free(bz);
}

/* The VMM dies behind banger's back: the next context reconciles. */
static void test_vmm_killed_is_reconciled(void **state)
{
	(void)state;
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "victim";
	o.image = "testimg";
	o.no_wait = 1;
	banger_vm *vm = NULL;
	assert_int_equal(banger_vm_create(&vm, F.ctx, &o), 0);
	pid_t *pids = NULL;
	size_t n = 0;
	assert_int_equal(bg_proc_find(&pids, &n, bg_vm_public_record(vm)->api_sock), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kill(pids[0], SIGKILL), 0);
	free(pids);
	for (int i = 0; i < 100 && fx_procs(&F) > 0; i++)
		bg_sleep_ms(20);
	banger_ctx_close(F.ctx);
	F.ctx = fx_open(&F, 0); /* reconcile on open */
	banger_vm *again;
	assert_int_equal(banger_vm_lookup(&again, F.ctx, "victim"), 0);
	assert_int_equal(banger_vm_state(again), BANGER_VM_STATE_STOPPED);
	assert_non_null(strstr(banger_vm_last_error(again), "exited unexpectedly"));
	banger_vm_free(again);
	fx_assert_clean(&F);
	assert_int_equal(banger_vm_delete(F.ctx, "victim", NULL), 0);
	banger_vm_free(vm);
}

/* Nothing of the VM name is left: no VM dir, no row, no tap, no loop, no
 * process, no NAT rule and no pin.  what says after what (messages). */
static void assert_rolled_back(const char *name, const char *what)
{
	banger_vm *vm;
	assert_int_equal(banger_vm_lookup(&vm, F.ctx, name), BANGER_ENOTFOUND);
	fx_assert_clean(&F);
	char *vms = bg_path_join(F.state, "vms");
	char *kh = bg_path_join(F.state, "ssh/known_hosts");
	assert_int_equal(fx_count("ls -A '%s' | wc -l", vms), 0);
	char *pins = NULL, *pin = bg_sprintf("%s.vm", name);
	if (bg_read_file(&pins, NULL, kh, 1 << 20) == 0) {
		if (strstr(pins, pin))
			fail_msg("%s: pin left behind", what);
		free(pins);
	}
	free(pin);
	free(vms);
	free(kh);
	banger_error_clear();
}

/* A failure injected at each step of create is rolled back completely. */
static void test_rollback_every_step(void **state)
{
	(void)state;
	static const char *const steps[] = {
		"create:dir", "create:recorded", "create:overlay", "create:workdisk", "create:identity",
		"create:tap", "create:nat", "create:spawn", "create:configure", "create:start",
		"create:running",
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		setenv("BANGER_FAULT_FAIL", steps[i], 1);
		banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
		o.name = "rb";
		o.image = "testimg";
		o.nat = 1;
		o.no_wait = 1;
		int rc = banger_vm_create(NULL, F.ctx, &o);
		unsetenv("BANGER_FAULT_FAIL");
		if (rc == 0)
			fail_msg("%s: create succeeded despite the injected failure", steps[i]);
		if (!strstr(banger_error_last()->message, steps[i]))
			fail_msg("%s: error does not say which step failed: %s", steps[i], banger_error_last()->message);
		assert_rolled_back("rb", steps[i]);
		printf("ok: failure at %-16s rolled back completely\n", steps[i]);
	}
}

/* A progress callback that records the stages it sees (each once, in
 * order) and asks to stop at one of them. */
typedef struct {
	const char *stop_at; /* NULL: never */
	int stop_event;      /* the event of that stage to stop at */
	int operation, last_event;
	char seen[256];
} canceller;

static int cancel_at(const banger_progress *p, void *payload)
{
	canceller *c = payload;
	c->operation = p->operation;
	c->last_event = p->event;
	const char *last = strrchr(c->seen, ' ');
	if (p->event != BANGER_PROGRESS_DONE && strcmp(last ? last + 1 : c->seen, p->stage) != 0)
		snprintf(c->seen + strlen(c->seen), sizeof(c->seen) - strlen(c->seen), "%s%s", c->seen[0] ? " " : "",
			 p->stage);
	return c->stop_at && strcmp(p->stage, c->stop_at) == 0 && p->event == c->stop_event;
}

/* Create can be cancelled at every report, the wait for SSH included:
 * BANGER_ECANCELLED, and everything is rolled back as on a failure (no
 * VM dir, no row, no tap, no loop, no process, no NAT rule, no pin).  A
 * cancelled start leaves the VM stopped, with nothing running. */
static void test_cancel_every_step(void **state)
{
	(void)state;
	/* the stages a create goes through here (the fake runs no guest, so
	 * the wait for SSH only waits) */
	canceller all;
	memset(&all, 0, sizeof(all));
	all.stop_at = "ssh";
	all.stop_event = BANGER_PROGRESS_WAITING;
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "cx";
	o.image = "testimg";
	o.nat = 1;
	o.progress = cancel_at;
	o.progress_payload = &all;
	assert_int_equal(banger_vm_create(NULL, F.ctx, &o), BANGER_ECANCELLED);
	assert_int_equal(all.operation, BANGER_PROGRESS_OP_VM_CREATE);
	printf("create reports: %s\n", all.seen);
	assert_true(strncmp(all.seen, "create disks identity ", 22) == 0);
	assert_non_null(strstr(all.seen, "network vmm ssh"));

	char stages[256];
	snprintf(stages, sizeof(stages), "%s", all.seen);
	for (char *stage = strtok(stages, " "); stage; stage = strtok(NULL, " ")) {
		for (int waiting = 0; waiting < 2; waiting++) {
			if (waiting && strcmp(stage, "ssh") != 0)
				continue;
			canceller c;
			memset(&c, 0, sizeof(c));
			c.stop_at = stage;
			c.stop_event = waiting ? BANGER_PROGRESS_WAITING : BANGER_PROGRESS_STEP;
			o.progress_payload = &c;
			int rc = banger_vm_create(NULL, F.ctx, &o);
			if (rc != BANGER_ECANCELLED)
				fail_msg("cancel at %s: create gave %d: %s", stage, rc,
					 banger_error_last() ? banger_error_last()->message : "");
			assert_non_null(strstr(banger_error_last()->message, "cancelled"));
			assert_rolled_back("cx", stage);
			printf("ok: cancelled at %s%s, rolled back completely\n", stage, waiting ? " (waiting)" : "");
		}
	}

	/* start: cancelled as the VMM starts, the VM is stopped again */
	o.no_start = 1;
	o.progress = NULL;
	assert_int_equal(banger_vm_create(NULL, F.ctx, &o), 0);
	canceller c;
	memset(&c, 0, sizeof(c));
	c.stop_at = "vmm";
	c.stop_event = BANGER_PROGRESS_STEP;
	banger_vm_start_options so = BANGER_VM_START_OPTIONS_INIT;
	so.no_wait = 1;
	so.progress = cancel_at;
	so.progress_payload = &c;
	assert_int_equal(banger_vm_start(F.ctx, "cx", &so), BANGER_ECANCELLED);
	assert_int_equal(c.operation, BANGER_PROGRESS_OP_VM_START);
	banger_vm *vm;
	assert_int_equal(banger_vm_lookup(&vm, F.ctx, "cx"), 0);
	assert_int_equal(banger_vm_state(vm), BANGER_VM_STATE_STOPPED);
	assert_non_null(strstr(banger_vm_last_error(vm), "cancelled"));
	banger_vm_free(vm);
	fx_assert_clean(&F);
	/* and without cancelling, start reports DONE last */
	memset(&c, 0, sizeof(c));
	assert_int_equal(banger_vm_start(F.ctx, "cx", &so), 0);
	assert_int_equal(c.last_event, BANGER_PROGRESS_DONE);
	assert_int_equal(fx_procs(&F), 1);
	assert_int_equal(banger_vm_delete(F.ctx, "cx", &FORCE_DELETE), 0);
	fx_assert_clean(&F);
}

/* A cancel is the caller saying stop: even with keep_on_failure a
 * cancelled create leaves nothing (no record, no directory, no kernel
 * object, no pin, no cached handles), and the error is the plain
 * BANGER_ECANCELLED, without the "create VM" of a failure. */
static void test_cancel_ignores_keep_on_failure(void **state)
{
	(void)state;
	static const struct {
		const char *stage;
		int event;
	} stops[] = { { "create", BANGER_PROGRESS_STEP }, { "disks", BANGER_PROGRESS_STEP },
		      { "identity", BANGER_PROGRESS_STEP }, { "network", BANGER_PROGRESS_STEP },
		      { "vmm", BANGER_PROGRESS_STEP }, { "ssh", BANGER_PROGRESS_STEP },
		      { "ssh", BANGER_PROGRESS_WAITING } };
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "cx";
	o.image = "testimg";
	o.nat = 1;
	o.keep_on_failure = 1;
	o.progress = cancel_at;
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
		canceller c;
		memset(&c, 0, sizeof(c));
		c.stop_at = stops[i].stage;
		c.stop_event = stops[i].event;
		o.progress_payload = &c;
		int rc = banger_vm_create(NULL, F.ctx, &o);
		if (rc != BANGER_ECANCELLED)
			fail_msg("cancel at %s: create gave %d: %s", stops[i].stage, rc, banger_error_last()->message);
		const char *msg = banger_error_last()->message;
		if (strncmp(msg, "cancelled", 9) != 0)
			fail_msg("cancel at %s: the error is not plainly a cancel: %s", stops[i].stage, msg);
		assert_int_equal(bg_vm_cache_count(F.ctx), 0);
		assert_rolled_back("cx", stops[i].stage);
		printf("ok: cancelled at %s%s with keep_on_failure, nothing kept\n", stops[i].stage,
		       stops[i].event == BANGER_PROGRESS_WAITING ? " (waiting)" : "");
	}
	/* a failure is still kept when asked */
	setenv("BANGER_FAULT_FAIL", "create:spawn", 1);
	o.progress = NULL;
	o.no_wait = 1;
	int rc = banger_vm_create(NULL, F.ctx, &o);
	unsetenv("BANGER_FAULT_FAIL");
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(banger_error_last()->message, "create VM cx"));
	banger_vm *vm;
	assert_int_equal(banger_vm_lookup(&vm, F.ctx, "cx"), 0);
	assert_int_equal(banger_vm_state(vm), BANGER_VM_STATE_STOPPED);
	banger_vm_free(vm);
	assert_int_equal(banger_vm_delete(F.ctx, "cx", NULL), 0);
	fx_assert_clean(&F);
}

/* The wait for SSH reports WAITING often (about twice a second; before,
 * one dial could hold it 3 s and an agent probe 1.5 s more): the
 * largest gap is printed, not asserted. */
typedef struct {
	int waits;
	int64_t last, max_gap;
} gap_watch;

static int watch_gaps(const banger_progress *p, void *payload)
{
	gap_watch *g = payload;
	int64_t now = bg_now_ms();
	if (p->event != BANGER_PROGRESS_WAITING)
		return 0;
	if (g->waits++ && now - g->last > g->max_gap)
		g->max_gap = now - g->last;
	g->last = now;
	return g->waits >= 12;
}

static void test_wait_reports_often(void **state)
{
	(void)state;
	gap_watch g;
	memset(&g, 0, sizeof(g));
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "slow";
	o.image = "testimg";
	o.progress = watch_gaps;
	o.progress_payload = &g;
	assert_int_equal(banger_vm_create(NULL, F.ctx, &o), BANGER_ECANCELLED);
	assert_int_equal(g.waits, 12);
	printf("the wait for SSH (no guest answers): 12 WAITING reports, at most %lld ms apart\n",
	       (long long)g.max_gap);
	assert_rolled_back("slow", "waiting");
}

/* Another process holds the VM's lock: start and restart report the wait
 * (WAITING at "lock", naming the holder) and a cancel in it changes
 * nothing; once the holder lets go, start goes on. */
typedef struct {
	int waits, cancel, operation;
	pid_t release; /* > 0: stop this holder at the first wait */
	char detail[256], subject[64];
} lock_watch;

static int on_lock_wait(const banger_progress *p, void *payload)
{
	lock_watch *w = payload;
	if (p->event != BANGER_PROGRESS_WAITING || strcmp(p->stage, "lock") != 0)
		return 0;
	w->waits++;
	w->operation = p->operation;
	snprintf(w->detail, sizeof(w->detail), "%s", p->detail ? p->detail : "");
	snprintf(w->subject, sizeof(w->subject), "%s", p->subject ? p->subject : "");
	if (w->release > 0) {
		lock_holder_stop(w->release);
		w->release = 0;
	}
	return w->cancel;
}

static void test_vm_lock_wait(void **state)
{
	(void)state;
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "lk";
	o.image = "testimg";
	o.no_start = 1;
	banger_vm *vm = NULL;
	assert_int_equal(banger_vm_create(&vm, F.ctx, &o), 0);
	char *lock = bg_path_join(bg_vm_public_record(vm)->vm_dir, "lock");
	pid_t holder = lock_holder_start(lock);
	char held[64];
	snprintf(held, sizeof(held), "waiting for the lock of VM lk held by pid %d", (int)holder);

	lock_watch w = { 0, 1, 0, 0, "", "" };
	banger_vm_start_options so = BANGER_VM_START_OPTIONS_INIT;
	so.no_wait = 1;
	so.progress = on_lock_wait;
	so.progress_payload = &w;
	assert_int_equal(banger_vm_start(F.ctx, "lk", &so), BANGER_ECANCELLED);
	assert_int_equal(w.waits, 1);
	assert_int_equal(w.operation, BANGER_PROGRESS_OP_VM_START);
	assert_string_equal(w.subject, "lk");
	assert_string_equal(w.detail, held);
	memset(&w, 0, sizeof(w));
	w.cancel = 1;
	assert_int_equal(banger_vm_restart(F.ctx, "lk", &so), BANGER_ECANCELLED);
	assert_int_equal(w.operation, BANGER_PROGRESS_OP_VM_RESTART);
	banger_vm *again;
	assert_int_equal(banger_vm_lookup(&again, F.ctx, "lk"), 0);
	assert_int_equal(banger_vm_state(again), BANGER_VM_STATE_STOPPED);
	banger_vm_free(again);
	fx_assert_clean(&F);

	/* the holder lets go while start waits: it starts */
	memset(&w, 0, sizeof(w));
	w.release = holder;
	assert_int_equal(banger_vm_start(F.ctx, "lk", &so), 0);
	assert_true(w.waits >= 1);
	assert_int_equal(fx_procs(&F), 1);
	assert_int_equal(banger_vm_delete(F.ctx, "lk", &FORCE_DELETE), 0);
	fx_assert_clean(&F);
	bg_free(lock);
	banger_vm_free(vm);
}

int main(void)
{
	int rc = fx_enter_netns();
	if (rc)
		return rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejection_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capability_checked_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vmm_killed_is_reconciled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_every_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_every_step, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_ignores_keep_on_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_reports_often, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_lock_wait, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
