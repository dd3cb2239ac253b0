/* Store: migrations, the no-handles schema guard, VM records, two
 * processes writing at once. */
#include "helpers.h"
#include "../../libbanger/store/store.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

static void fill(bg_vm_record *vm, const char *id, const char *name, const char *ip, uint32_t cid)
{
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->id, sizeof(vm->id), "%s", id);
	vm->name = (char *)name;
	vm->state = (char *)"stopped";
	vm->vmm = (char *)"qemu";
	vm->guest_ip = (char *)ip;
	vm->vsock_cid = cid;
	vm->vcpus = 2;
	vm->memory_mib = 512;
	vm->created_at = vm->updated_at = 1700000000;
}

static void test_migrate_idempotent(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	int v1;
	assert_int_equal(bg_store_schema_version(&s, &v1), 0);
	assert_true(v1 >= 1);
	bg_store_close(&s);
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	int v2;
	assert_int_equal(bg_store_schema_version(&s, &v2), 0);
	assert_int_equal(v1, v2);
	/* a store from a newer banger is refused, not downgraded */
	assert_int_equal(bg_store_exec(&s, "PRAGMA user_version = 999"), 0);
	bg_store_close(&s);
	assert_int_equal(bg_store_open(&s, db, NULL), BANGER_EUNSUPPORTED);
	free(db);
	test_rmrf(dir);
	free(dir);
}

/* DESIGN §1.3: kernel handles never go into SQLite. */
static void test_no_handle_columns(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	sqlite3_stmt *st;
	assert_int_equal(bg_store_prepare(&s, &st,
		"SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type='table'"), 0);
	static const char *const banned[] = { "pid", "tap", "loop", "dm_", "dm", "handle", "device" };
	int columns = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *table = (const char *)sqlite3_column_text(st, 0);
		const char *col = (const char *)sqlite3_column_text(st, 1);
		columns++;
		for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++) {
			size_t n = strlen(banned[i]);
			bool hit = strcmp(col, banned[i]) == 0 || strncmp(col, banned[i], n) == 0 ||
				   strstr(col, "_pid") || strstr(col, "_tap") || strstr(col, "loop") ||
				   strstr(col, "_dm");
			if (hit)
				fail_msg("table %s has handle column %s", table, col);
		}
	}
	sqlite3_finalize(st);
	assert_true(columns > 20);
	bg_store_close(&s);
	free(db);
	test_rmrf(dir);
	free(dir);
}

static void test_vm_crud(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	bg_vm_record a, b, got;
	fill(&a, "0000000a", "alpha", "172.30.0.2", 3);
	fill(&b, "0000000b", "beta", "172.30.0.6", 4);
	assert_int_equal(bg_store_vm_insert(&s, &a), 0);
	assert_int_equal(bg_store_vm_insert(&s, &b), 0);
	/* names, IPs and CIDs are unique */
	bg_vm_record c;
	fill(&c, "0000000c", "alpha", "172.30.0.10", 5);
	assert_int_equal(bg_store_vm_insert(&s, &c), BANGER_EEXISTS);
	fill(&c, "0000000c", "gamma", "172.30.0.2", 5);
	assert_int_equal(bg_store_vm_insert(&s, &c), BANGER_EEXISTS);
	fill(&c, "0000000c", "gamma", "172.30.0.10", 3);
	assert_int_equal(bg_store_vm_insert(&s, &c), BANGER_EEXISTS);

	assert_int_equal(bg_store_vm_get(&s, &got, "beta"), 0);
	assert_string_equal(got.id, "0000000b");
	assert_int_equal(got.vsock_cid, 4);
	bg_vm_record_clear(&got);
	assert_int_equal(bg_store_vm_get(&s, &got, "0000000a"), 0);
	assert_string_equal(got.name, "alpha");
	bg_vm_record_clear(&got);
	assert_int_equal(bg_store_vm_get(&s, &got, "nope"), BANGER_ENOTFOUND);

	assert_int_equal(bg_store_vm_set_state(&s, "0000000a", "running", NULL), 0);
	assert_int_equal(bg_store_vm_set_state(&s, "0000000f", "running", NULL), BANGER_ENOTFOUND);
	bg_vm_record *list;
	size_t n;
	assert_int_equal(bg_store_vm_list(&s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alpha");
	assert_string_equal(list[0].state, "running");
	bg_vm_records_free(list, n);
	assert_int_equal(bg_store_vm_delete(&s, "0000000a"), 0);
	assert_int_equal(bg_store_vm_list(&s, &list, &n), 0);
	assert_int_equal(n, 1);
	bg_vm_records_free(list, n);
	bg_store_close(&s);
	free(db);
	test_rmrf(dir);
	free(dir);
}

/* Two processes, each with its own connection, inserting and updating
 * at once: nothing is lost and no "database is locked" escapes. */
static void test_two_processes(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *db = bg_path_join(dir, "b.db");
	enum { PER_CHILD = 150 };
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			bg_store s;
			if (bg_store_open(&s, db, NULL)) {
				fprintf(stderr, "child %d: %s\n", k, banger_error_last()->message);
				_exit(10);
			}
			for (int i = 0; i < PER_CHILD; i++) {
				char id[9], name[32], ip[32];
				snprintf(id, sizeof(id), "%07x%d", i, k);
				snprintf(name, sizeof(name), "vm-%d-%d", k, i);
				snprintf(ip, sizeof(ip), "10.%d.%d.%d", k, i / 250, i % 250);
				bg_vm_record vm;
				fill(&vm, id, name, ip, (uint32_t)(3 + k * 1000 + i));
				if (bg_store_begin(&s) || bg_store_vm_insert(&s, &vm) ||
				    bg_store_vm_set_state(&s, id, "running", NULL) || bg_store_commit(&s)) {
					fprintf(stderr, "child %d: %s\n", k, banger_error_last()->message);
					_exit(11);
				}
			}
			bg_store_close(&s);
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		int st;
		waitpid(kids[k], &st, 0);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	bg_store s;
	assert_int_equal(bg_store_open(&s, db, NULL), 0);
	bg_vm_record *list;
	size_t n;
	assert_int_equal(bg_store_vm_list(&s, &list, &n), 0);
	assert_int_equal(n, 2 * PER_CHILD);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list[i].state, "running");
	bg_vm_records_free(list, n);
	bg_store_close(&s);
	free(db);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_idempotent),
		cmocka_unit_test(test_no_handle_columns),
		cmocka_unit_test(test_vm_crud),
		cmocka_unit_test(test_two_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
