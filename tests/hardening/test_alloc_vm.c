/* Allocation failure in banger_vm_create against the Firecracker API fake
 * (root: taps and nftables in a private network namespace), and in
 * banger_vm_delete of a running VM.
 *
 * For each N the child opens its own context (without reconcile, so that
 * nothing tidies up after the call), creates a VM with the Nth allocation
 * failing and checks, against the kernel and the store rather than
 * banger's own view: no row for the VM, no VM directory, no tap, no VMM
 * process, no NAT rule, no loop device, no known_hosts pin, and
 * PRAGMA integrity_check "ok".  A create that succeeds despite the
 * failure must have produced a running VM, which is then deleted and the
 * same checks run.
 *
 * A create spawns the VMM and runs mkfs.ext4, so trying every N takes
 * minutes: CI tries N = 1..60, then an even sample, capped at 150 runs;
 * BANGER_ALLOC_FULL=1 tries them all. */
#include "../integration/vm/vm_fixture.h"
#include "alloc_fail.h"

#include <sqlite3.h>

static const banger_vm_delete_options FORCE_DELETE = { BANGER_VM_DELETE_OPTIONS_VERSION, 1 };

static vm_fixture F;

typedef struct {
	banger_ctx *ctx;
} child_env;
static child_env C;

static banger_ctx *child_open(void)
{
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = F.state;
	o.config_path = F.config;
	o.flags = BANGER_CTX_NO_RECONCILE;
	banger_ctx *ctx = NULL;
	return banger_ctx_open(&ctx, &o) == 0 ? ctx : NULL;
}

static int sql_int(const char *query, int *out)
{
	char *db = bg_path_join(F.state, "banger.db");
	sqlite3 *h = NULL;
	int rc = -1;
	if (db && sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 5000);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(h, query, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
			if (sqlite3_column_type(st, 0) == SQLITE_TEXT)
				*out = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
			else
				*out = sqlite3_column_int(st, 0);
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	bg_free(db);
	return rc;
}

/* Nothing of VM "af" exists anywhere; the store is sound. */
static int nothing_left(const char *when)
{
	int bad = 0, n = -1, ok = 0;
	if (sql_int("SELECT count(*) FROM vms", &n) != 0 || n != 0)
		fprintf(stderr, "%s: %d VM rows left\n", when, n), bad = 1;
	if (sql_int("PRAGMA integrity_check", &ok) != 0 || !ok)
		fprintf(stderr, "%s: integrity_check failed\n", when), bad = 1;
	char *vms = bg_path_join(F.state, "vms");
	if ((n = fx_count("ls -A '%s' 2>/dev/null | wc -l", vms)) != 0)
		fprintf(stderr, "%s: %d VM directories left\n", when, n), bad = 1;
	bg_free(vms);
	if ((n = fx_taps()) != 0)
		fprintf(stderr, "%s: %d taps left\n", when, n), bad = 1;
	if ((n = fx_procs(&F)) != 0)
		fprintf(stderr, "%s: %d VMM processes left\n", when, n), bad = 1;
	if ((n = fx_nat_rules()) != 0)
		fprintf(stderr, "%s: %d NAT rules left\n", when, n), bad = 1;
	if ((n = fx_loops(&F)) != 0)
		fprintf(stderr, "%s: %d loop devices left\n", when, n), bad = 1;
	char *kh = bg_path_join(F.state, "ssh/known_hosts");
	char *text = NULL;
	if (bg_path_exists(kh) && bg_read_file(&text, NULL, kh, 1 << 20) == 0 && strstr(text, "af.vm"))
		fprintf(stderr, "%s: af.vm still pinned\n", when), bad = 1;
	bg_free(text);
	bg_free(kh);
	return bad ? -1 : 0;
}

/* Make the next child start from nothing even if this one left debris
 * (the failure is reported; the rest of the loop should still mean
 * something). */
static void scrub(void)
{
	banger_ctx *ctx = child_open();
	if (ctx) {
		banger_vm_delete(ctx, "af", &FORCE_DELETE);
		unsigned fixed = 0;
		bg_vm_reconcile(ctx, true, NULL, &fixed);
		banger_ctx_close(ctx);
	}
}

static int setup(void *arg)
{
	(void)arg;
	C.ctx = child_open();
	return C.ctx ? 0 : -1;
}

static void teardown(void *arg)
{
	(void)arg;
	banger_ctx_close(C.ctx);
	C.ctx = NULL;
}

static int create_op(void *arg)
{
	(void)arg;
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = "af";
	o.image = "testimg";
	o.nat = 1;
	o.no_wait = 1; /* the fake boots no guest */
	return banger_vm_create(NULL, C.ctx, &o);
}

static int create_verify(void *arg, int rc)
{
	(void)arg;
	if (rc != 0) {
		if (nothing_left("after a failed create") == 0)
			return 0;
		scrub();
		return -1;
	}
	banger_vm *vm = NULL;
	int bad = 0;
	if (banger_vm_lookup(&vm, C.ctx, "af") != 0 || banger_vm_state(vm) != BANGER_VM_STATE_RUNNING ||
	    banger_vm_is_alive(C.ctx, vm) != 1 || fx_taps() != 1 || fx_procs(&F) != 1 || fx_nat_rules() != 3) {
		fprintf(stderr, "create succeeded but the VM is not running with its objects\n");
		bad = 1;
	}
	/* a success must not have skipped anything that matters: the host
	 * key is pinned under both names, handles.json records the tap */
	char *kh = bg_path_join(F.state, "ssh/known_hosts");
	char *text = NULL;
	if (!vm || bg_read_file(&text, NULL, kh, 1 << 20) != 0 || !strstr(text, "af.vm ssh-ed25519 ") ||
	    !banger_vm_guest_ip(vm) || !strstr(text, banger_vm_guest_ip(vm))) {
		fprintf(stderr, "create succeeded but the host key is not pinned under both names\n");
		bad = 1;
	}
	bg_free(text);
	bg_free(kh);
	if (vm) {
		char *hj = bg_path_join(bg_vm_public_record(vm)->vm_dir, "handles.json");
		bg_vm_handles h;
		if (bg_handles_read(hj, &h) != 0 || !h.tap[0] || !h.nat) {
			fprintf(stderr, "create succeeded but handles.json does not record the tap and NAT\n");
			bad = 1;
		}
		bg_free(hj);
	}
	banger_vm_free(vm);
	if (banger_vm_delete(C.ctx, "af", &FORCE_DELETE) != 0) {
		fprintf(stderr, "delete after create: %s\n", banger_error_last()->message);
		bad = 1;
	}
	if (nothing_left("after create + delete") != 0)
		bad = 1;
	if (bad)
		scrub();
	return bad ? -1 : 0;
}

/* delete of a running VM: setup creates it (not armed) */
static int delete_setup(void *arg)
{
	if (setup(arg) != 0)
		return -1;
	banger_error_clear();
	if (create_op(arg) != 0) {
		fprintf(stderr, "delete setup: create: %s\n", banger_error_last()->message);
		return -1;
	}
	return 0;
}

static int delete_op(void *arg)
{
	(void)arg;
	return banger_vm_delete(C.ctx, "af", &FORCE_DELETE);
}

static int delete_verify(void *arg, int rc)
{
	(void)arg;
	if (rc == 0)
		return nothing_left("after delete");
	/* a failed delete leaves the VM deletable: the next attempt (without
	 * failures) finishes the job */
	if (banger_vm_delete(C.ctx, "af", &FORCE_DELETE) != 0) {
		fprintf(stderr, "delete after a failed delete: %s\n", banger_error_last()->message);
		scrub();
		return -1;
	}
	if (nothing_left("after a failed delete and a retry") != 0) {
		scrub();
		return -1;
	}
	return 0;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	const af_opts calls[] = {
		{ "banger_vm_create (firecracker fake)", setup, create_op, create_verify, teardown, NULL, 150, 60 },
		{ "banger_vm_delete (running, force)", delete_setup, delete_op, delete_verify, teardown, NULL, 100, 40 },
	};
	unsigned bad = 0;
	int other = 0;
	for (size_t i = 0; i < BG_ARRAY_SIZE(calls); i++) {
		af_result r = af_run(&calls[i]);
		bad += r.bad;
		other += r.other_codes;
		assert_true(r.runs > 1);
	}
	if (bad || other)
		fail_msg("%u bad runs, %d errors other than BANGER_ENOMEM (see above)", bad, other);
}

static int group_setup(void **state)
{
	(void)state;
	fx_setup(&F);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_teardown(&F);
	return 0;
}

int main(void)
{
	int rc = fx_enter_netns();
	if (rc)
		return rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
