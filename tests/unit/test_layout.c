/* Layout: where files live, safe modes, socket-length limit. */
#include "helpers.h"
#include "../../libbanger/layout/layout.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_banger_home_and_xdg(void **state)
{
	(void)state;
	bg_layout l;
	setenv("BANGER_HOME", "/srv/bh", 1);
	unsetenv("BANGER_RUNTIME_DIR");
	assert_int_equal(bg_layout_resolve(&l, NULL, NULL), 0);
	assert_string_equal(l.state_dir, "/srv/bh");
	assert_string_equal(l.db_path, "/srv/bh/banger.db");
	assert_string_equal(l.known_hosts, "/srv/bh/ssh/known_hosts");
	assert_string_equal(l.config_path, "/srv/bh/config");
	assert_string_equal(l.cache_dir, "/srv/bh/cache");
	assert_string_equal(l.blobs_dir, "/srv/bh/cache/blobs/sha256");
	char *lock = bg_layout_image_lock(&l, "debian");
	assert_string_equal(lock, "/srv/bh/images/.lock-debian");
	bg_free(lock);
	bg_layout_free(&l);

	unsetenv("BANGER_HOME");
	setenv("XDG_STATE_HOME", "/x/state", 1);
	setenv("XDG_CONFIG_HOME", "/x/config", 1);
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	assert_int_equal(bg_layout_resolve(&l, NULL, NULL), 0);
	assert_string_equal(l.state_dir, "/x/state/banger");
	assert_string_equal(l.config_path, "/x/config/banger/config");
	assert_string_equal(l.cache_dir, "/x/cache/banger");
	bg_layout_free(&l);

	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(bg_layout_resolve(&l, NULL, NULL), 0);
	assert_string_equal(l.state_dir, "/home/u/.local/state/banger");
	bg_layout_free(&l);

	/* explicit override wins over the environment */
	setenv("BANGER_HOME", "/srv/bh", 1);
	assert_int_equal(bg_layout_resolve(&l, "/opt/other", "/etc/banger.conf"), 0);
	assert_string_equal(l.state_dir, "/opt/other");
	assert_string_equal(l.config_path, "/etc/banger.conf");
	bg_layout_free(&l);
	unsetenv("BANGER_HOME");
}

static void test_socket_paths_fit_or_fail(void **state)
{
	(void)state;
	bg_layout l;
	char longdir[200];
	memset(longdir, 'a', sizeof(longdir));
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	setenv("BANGER_RUNTIME_DIR", longdir, 1);
	assert_int_equal(bg_layout_resolve(&l, "/srv/x", NULL), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "107"));
	unsetenv("BANGER_RUNTIME_DIR");

	assert_int_equal(bg_layout_resolve(&l, "/srv/x", NULL), 0);
	bg_vm_paths p;
	assert_int_equal(bg_layout_vm_paths(&p, &l, "0123abcd"), 0);
	assert_true(strlen(p.api_sock) <= BG_SOCKET_PATH_MAX);
	assert_true(strlen(p.vsock_sock) + strlen("_4294967295") <= BG_SOCKET_PATH_MAX);
	assert_true(strlen(p.tap) <= BG_TAP_NAME_MAX);
	assert_true(strncmp(p.tap, "bg", 2) == 0);
	assert_string_equal(p.handles, "/srv/x/vms/0123abcd/handles.json");
	assert_string_equal(p.work_disk, "/srv/x/vms/0123abcd/work.img");
	/* deterministic: same id, same names */
	bg_vm_paths q;
	assert_int_equal(bg_layout_vm_paths(&q, &l, "0123abcd"), 0);
	assert_string_equal(p.tap, q.tap);
	assert_string_equal(p.api_sock, q.api_sock);
	assert_string_equal(p.dm_name, q.dm_name);
	bg_vm_paths_free(&p);
	bg_vm_paths_free(&q);
	assert_int_equal(bg_layout_vm_paths(&p, &l, "../../etc"), BANGER_EINVALID);
	bg_layout_free(&l);
}

static void test_instances_differ(void **state)
{
	(void)state;
	bg_layout a, b;
	assert_int_equal(bg_layout_resolve(&a, "/srv/a", NULL), 0);
	assert_int_equal(bg_layout_resolve(&b, "/srv/b", NULL), 0);
	assert_string_not_equal(a.instance, b.instance);
	bg_layout_free(&a);
	bg_layout_free(&b);
}

static void test_ensure_modes(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char *root = bg_path_join(dir, "state");
	bg_layout l;
	setenv("BANGER_RUNTIME_DIR", dir, 1);
	mode_t old = umask(0);
	assert_int_equal(bg_layout_resolve(&l, root, NULL), 0);
	assert_int_equal(bg_layout_ensure(&l), 0);
	umask(old);
	struct stat st;
	assert_int_equal(stat(l.state_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(l.ssh_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* an ssh/ dir that others can read is refused, not silently fixed */
	assert_int_equal(chmod(l.ssh_dir, 0755), 0);
	assert_int_equal(bg_layout_ensure(&l), BANGER_EPERM);
	assert_non_null(strstr(banger_error_last()->message, "chmod 700"));
	assert_int_equal(chmod(l.ssh_dir, 0700), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(l.ssh_dir, 12345, 12345), 0);
		assert_int_equal(bg_layout_ensure(&l), BANGER_EPERM);
		assert_non_null(strstr(banger_error_last()->message, "uid 12345"));
		assert_int_equal(chown(l.ssh_dir, 0, 0), 0);
	}
	assert_int_equal(bg_layout_ensure(&l), 0);
	bg_layout_free(&l);
	unsetenv("BANGER_RUNTIME_DIR");
	free(root);
	test_rmrf(dir);
	free(dir);
}

static void test_vm_ids(void **state)
{
	(void)state;
	char id[BG_VM_ID_LEN + 1];
	assert_int_equal(bg_vm_id_generate(id), 0);
	assert_true(bg_vm_id_valid(id));
	assert_false(bg_vm_id_valid("0123ABCD"));
	assert_false(bg_vm_id_valid("0123abc"));
	assert_false(bg_vm_id_valid(NULL));
}

/* The one rule for banger's own files (layout.h, bg_guest_files). */
static void touch(const char *dir, const char *name)
{
	char *p = bg_path_join(dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	bg_free(p);
}

static void test_guest_files(void **state)
{
	const char *build = getenv("BANGER_BUILD_DIR");
	assert_non_null(build);
	char want_dir[PATH_MAX], got[PATH_MAX];
	char *staged = bg_sprintf("%s/libexec/banger", build);
	assert_non_null(realpath(staged, want_dir));
	bg_free(staged);
	char *saved = getenv("BANGER_GUEST_DIR") ? strdup(getenv("BANGER_GUEST_DIR")) : NULL;
	char *dir = test_tmpdir();
	char *path = NULL;

	/* without $BANGER_GUEST_DIR: the build tree, found beside this
	 * program (it links the static library), no path compiled in */
	unsetenv("BANGER_GUEST_DIR");
	assert_int_equal(bg_guest_file(&path, "banger-vsock-agent"), 0);
	assert_non_null(realpath(path, got));
	assert_true(bg_startswith(got, want_dir));
	bg_free(path);

	/* $BANGER_GUEST_DIR first; a relative one is not used */
	touch(dir, "banger-vsock-agent");
	setenv("BANGER_GUEST_DIR", dir, 1);
	assert_int_equal(bg_guest_file(&path, "banger-vsock-agent"), 0);
	assert_true(bg_startswith(path, dir));
	bg_free(path);
	setenv("BANGER_GUEST_DIR", "relative/dir", 1);
	assert_int_equal(bg_guest_file(&path, "banger-vsock-agent"), 0);
	assert_false(bg_startswith(path, "relative"));
	bg_free(path);
	setenv("BANGER_GUEST_DIR", dir, 1);

	/* files asked for together come from one place: the unit is not in
	 * dir, so both come from the build tree */
	const char *pair[] = { "banger-vsock-agent", "banger-vsock-agent.service" };
	char *two[2];
	assert_int_equal(bg_guest_files(two, pair, 2), 0);
	assert_false(bg_startswith(two[0], dir));
	assert_non_null(realpath(two[0], got));
	assert_true(bg_startswith(got, want_dir));
	assert_true(bg_endswith(two[1], "/banger-vsock-agent.service"));
	bg_free(two[0]);
	bg_free(two[1]);

	/* a file's own variable wins when it names a usable file */
	touch(dir, "relay");
	char *relay = bg_path_join(dir, "relay");
	setenv("BANGER_CONSOLE_RELAY", relay, 1);
	assert_int_equal(bg_guest_file(&path, "banger-console"), 0);
	assert_string_equal(path, relay);
	bg_free(path);
	setenv("BANGER_CONSOLE_RELAY", "/nonexistent/banger-console", 1);
	assert_int_equal(bg_guest_file(&path, "banger-console"), 0);
	assert_true(bg_endswith(path, "/banger-console"));
	assert_false(bg_startswith(path, "/nonexistent"));
	bg_free(path);
	unsetenv("BANGER_CONSOLE_RELAY");
	bg_free(relay);

	/* nowhere: the files and the places are named; nothing is returned */
	const char *missing[] = { "banger-vsock-agent", "no-such-file" };
	two[0] = two[1] = (char *)1;
	assert_int_equal(bg_guest_files(two, missing, 2), BANGER_ENOTFOUND);
	assert_null(two[0]);
	assert_null(two[1]);
	const char *msg = banger_error_last()->message;
	assert_non_null(strstr(msg, "no-such-file"));
	assert_non_null(strstr(msg, dir));
	assert_non_null(strstr(msg, want_dir));
	assert_int_equal(bg_guest_files(two, missing, 0), BANGER_EINVALID);

	if (saved)
		setenv("BANGER_GUEST_DIR", saved, 1);
	else
		unsetenv("BANGER_GUEST_DIR");
	free(saved);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_banger_home_and_xdg),
		cmocka_unit_test(test_socket_paths_fit_or_fail),
		cmocka_unit_test(test_instances_differ),
		cmocka_unit_test(test_ensure_modes),
		cmocka_unit_test(test_vm_ids),
		cmocka_unit_test(test_guest_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
