/* Twenty processes at once on one state root, against the Firecracker
 * fake (root: taps and nftables in a private network namespace).
 *
 * Each process opens its own context (reconciling, as every open does),
 * then, ROUNDS times: creates a VM with its own name, runs a full gc
 * (reconcile with the sweep of stray kernel objects) and checks its VM
 * survived it, lists VMs, looks up another process's VM (which may or
 * may not exist at that moment), pins a host key under names of its own,
 * and deletes its VM.  They start
 * together (a pipe is the starting gun).
 *
 * Checked: no call fails, above all not with an error about someone
 * else's request ("database is locked", busy, another VM's lock); every
 * pin is present afterwards; every VM is gone from the store, from the
 * VM directory and from the kernel (no tap, VMM process, NAT rule or loop
 * device left); the deleted VMs' pins are gone; PRAGMA integrity_check
 * says "ok". */
#include "../integration/vm/vm_fixture.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

static const banger_vm_delete_options FORCE_DELETE = { BANGER_VM_DELETE_OPTIONS_VERSION, 1 };

#define PROCS 20
#define ROUNDS 5
#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqJeE9zBxWgE7nveVEKZGojDXDJcEnn3GdrEoY+GMcv"

static vm_fixture F;

static bool foreign(const char *msg)
{
	/* errors that are about the store or another process, never about
	 * the caller's own request */
	static const char *const bad[] = { "database is locked", "SQLITE_BUSY", "busy", "locked by",
					   "another process" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++)
		if (msg && strcasestr(msg, bad[i]))
			return true;
	return false;
}

static int report(int id, const char *what, int rc)
{
	const char *msg = banger_error_last()->message;
	fprintf(stderr, "proc %d: %s: %d: %s%s\n", id, what, rc, msg,
		foreign(msg) ? "  <-- an error about someone else's request" : "");
	return 1;
}

/* What reconcile did in this process: printed, so that a failure can be
 * traced to the sweep that caused it (ctest shows it only on failure). */
static void logcb(int level, const char *msg, void *payload)
{
	(void)level;
	if (strstr(msg, "reconcile"))
		fprintf(stderr, "[proc %d] %s\n", (int)(intptr_t)payload, msg);
}

static int worker(int id, int gun)
{
	char c;
	if (read(gun, &c, 1) < 0) /* wait for the start */
		return 1;
	banger_ctx_options o = BANGER_CTX_OPTIONS_INIT;
	o.state_dir = F.state;
	o.config_path = F.config;
	o.log_cb = logcb;
	o.log_payload = (void *)(intptr_t)id;
	o.log_level = BANGER_LOG_INFO;
	banger_ctx *ctx = NULL;
	int rc = banger_ctx_open(&ctx, &o);
	if (rc)
		return report(id, "open", rc);
	int bad = 0;
	for (int r = 0; r < ROUNDS && !bad; r++) {
		char name[32], other[32], pin1[64], pin2[64];
		snprintf(name, sizeof(name), "c%02d-%d", id, r);
		snprintf(other, sizeof(other), "c%02d-%d", (id + 1) % PROCS, r);
		snprintf(pin1, sizeof(pin1), "pin-%02d-%d.example", id, r);
		snprintf(pin2, sizeof(pin2), "10.%d.%d.1", id, r);

		banger_vm_create_options co = BANGER_VM_CREATE_OPTIONS_INIT;
		co.name = name;
		co.image = "testimg";
		co.nat = 1;
		co.no_wait = 1;
		banger_vm *vm = NULL;
		if ((rc = banger_vm_create(&vm, ctx, &co))) {
			bad = report(id, "create", rc);
			break;
		}
		if (banger_vm_state(vm) != BANGER_VM_STATE_RUNNING || banger_vm_is_alive(ctx, vm) != 1) {
			fprintf(stderr, "proc %d: %s is %s after create\n", id, name,
				banger_vm_state_name(banger_vm_state(vm)));
			bad = 1;
		}
		banger_vm_free(vm);

		/* a full gc in the middle of everyone else's creates and deletes:
		 * it must take nothing that belongs to a VM in use */
		banger_vm_reconcile_options ro = BANGER_VM_RECONCILE_OPTIONS_INIT;
		ro.flags = BANGER_RECONCILE_SWEEP;
		if ((rc = banger_vm_reconcile(ctx, &ro)) < 0)
			bad = report(id, "reconcile --sweep", rc);
		banger_vm *again = NULL;
		if (banger_vm_lookup(&again, ctx, name) != 0 || banger_vm_is_alive(ctx, again) != 1) {
			fprintf(stderr, "proc %d: %s is no longer alive after gc (%s)\n", id, name,
				again ? banger_vm_state_name(banger_vm_state(again)) : "gone");
			bad = 1;
		}
		banger_vm_free(again);

		banger_vm_list *l = NULL;
		if ((rc = banger_vm_list_all(&l, ctx)))
			bad = report(id, "list", rc);
		banger_vm_list_free(l);
		banger_vm *o2 = NULL;
		rc = banger_vm_lookup(&o2, ctx, other);
		if (rc != 0 && rc != BANGER_ENOTFOUND)
			bad = report(id, "lookup of another VM", rc);
		banger_vm_free(o2);

		const char *names[] = { pin1, pin2 };
		if ((rc = banger_known_hosts_pin(banger_ssh_known_hosts_path(ctx), names, 2, 22, KEY_A)))
			bad = report(id, "pin", rc);

		if ((rc = banger_vm_delete(ctx, name, &FORCE_DELETE)))
			bad = report(id, "delete", rc);
	}
	banger_ctx_close(ctx);
	return bad;
}

static int sql_int(const char *query)
{
	char *db = bg_path_join(F.state, "banger.db");
	sqlite3 *h = NULL;
	int v = -1;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(h, query, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_type(st, 0) == SQLITE_TEXT
				    ? strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0
				    : sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	free(db);
	return v;
}

static void test_twenty_processes(void **state)
{
	(void)state;
	int gun[2];
	assert_int_equal(pipe(gun), 0);
	pid_t pids[PROCS];
	for (int i = 0; i < PROCS; i++) {
		fflush(stdout);
		fflush(stderr);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(gun[1]);
			exit(worker(i, gun[0]));
		}
	}
	close(gun[0]);
	int64_t t0 = bg_now_ms();
	close(gun[1]); /* EOF: everyone starts */
	int failed = 0;
	for (int i = 0; i < PROCS; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "process %d ended with status %#x\n", i, st);
			failed++;
		}
	}
	print_message("%d processes x %d rounds of create/list/lookup/pin/delete in %lld ms\n", PROCS, ROUNDS,
		      (long long)(bg_now_ms() - t0));
	assert_int_equal(failed, 0);

	/* every pin is there; every deleted VM's pins are not */
	char *kh = bg_path_join(F.state, "ssh/known_hosts");
	for (int i = 0; i < PROCS; i++)
		for (int r = 0; r < ROUNDS; r++) {
			char pin1[64], pin2[64], vmname[64];
			snprintf(pin1, sizeof(pin1), "pin-%02d-%d.example", i, r);
			snprintf(pin2, sizeof(pin2), "10.%d.%d.1", i, r);
			snprintf(vmname, sizeof(vmname), "c%02d-%d.vm", i, r);
			int v = -1;
			assert_int_equal(banger_known_hosts_check_line(&v, kh, pin1, 22, KEY_A), 0);
			if (v != BANGER_HOSTKEY_MATCH)
				fail_msg("pin %s is missing", pin1);
			assert_int_equal(banger_known_hosts_check_line(&v, kh, pin2, 22, KEY_A), 0);
			if (v != BANGER_HOSTKEY_MATCH)
				fail_msg("pin %s is missing", pin2);
			assert_int_equal(banger_known_hosts_check_line(&v, kh, vmname, 22, KEY_A), 0);
			assert_int_equal(v, BANGER_HOSTKEY_NOT_FOUND);
		}
	free(kh);

	/* the store and the kernel agree: nothing is left */
	assert_int_equal(sql_int("SELECT count(*) FROM vms"), 0);
	assert_int_equal(sql_int("PRAGMA integrity_check"), 1);
	char *vms = bg_path_join(F.state, "vms");
	assert_int_equal(fx_count("ls -A '%s' | wc -l", vms), 0);
	free(vms);
	fx_assert_clean(&F);
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
		cmocka_unit_test(test_twenty_processes),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
