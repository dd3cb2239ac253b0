/* Permissions audit: after a full lifecycle against the Firecracker fake
 * (kernel import, client key, an OCI image imported, VM create with NAT,
 * pins, stats, stop, start, a second VM deleted, the first left running),
 * walk the state
 * root and the runtime directory and check every mode:
 *
 *   - every directory is 0700;
 *   - nothing is group- or world-writable; nothing but a public key
 *     (*.pub) is readable by group or others;
 *   - private keys, known_hosts, handles.json, the database and its WAL
 *     and shared-memory files are 0600;
 *   - sockets are not accessible by group or others;
 *   - every file belongs to the user running banger;
 *   - nothing is a symlink pointing out of the tree.
 *
 * The test runs under umask 022 (the usual one), which is what would
 * make a careless open(..., 0644) or SQLite's default 0644 visible.
 * Root: taps and nftables in a private network namespace. */
#include "../integration/vm/vm_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <sys/stat.h>

static const banger_vm_delete_options FORCE_DELETE = { BANGER_VM_DELETE_OPTIONS_VERSION, 1 };
static const banger_vm_stop_options FORCE_STOP = { BANGER_VM_STOP_OPTIONS_VERSION, 1 };

static vm_fixture F;
static int problems, audited;

static void bad(const char *path, mode_t mode, const char *why)
{
	fprintf(stderr, "%s (mode %04o): %s\n", path, (unsigned)(mode & 07777), why);
	problems++;
}

static bool named(const char *path, const char *pattern)
{
	const char *base = strrchr(path, '/');
	return fnmatch(pattern, base ? base + 1 : path, 0) == 0;
}

static void audit(const char *path, const char *root, int depth)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno != ENOENT) /* a socket or log may go away meanwhile */
			bad(path, 0, strerror(errno));
		return;
	}
	mode_t m = st.st_mode & 07777;
	audited++;
	if (st.st_uid != geteuid())
		bad(path, m, "not owned by the user running banger");
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		if (target[0] == '/' && strncmp(target, root, strlen(root)) != 0)
			bad(path, m, "symlink out of the tree");
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (m != 0700)
			bad(path, m, "directory is not 0700");
		DIR *d = opendir(path);
		if (!d) {
			bad(path, m, "cannot list");
			return;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char *child = bg_path_join(path, e->d_name);
			audit(child, root, depth + 1);
			free(child);
		}
		closedir(d);
		return;
	}
	if (m & 022)
		bad(path, m, "writable by group or others");
	if (S_ISSOCK(st.st_mode)) {
		if (m & 077)
			bad(path, m, "socket accessible by group or others");
		return;
	}
	if ((m & 044) && !named(path, "*.pub"))
		bad(path, m, "readable by group or others");
	static const char *const private_files[] = { "id_ed25519", "known_hosts", "handles.json", "banger.db",
						     "banger.db-wal", "banger.db-shm", "*.lock", "lock" };
	for (size_t i = 0; i < BG_ARRAY_SIZE(private_files); i++)
		if (named(path, private_files[i]) && m != 0600)
			bad(path, m, "must be 0600");
}

static banger_vm *create(const char *name)
{
	banger_vm_create_options o = BANGER_VM_CREATE_OPTIONS_INIT;
	o.name = name;
	o.image = "testimg";
	o.nat = 1;
	o.no_wait = 1;
	banger_vm *vm = NULL;
	if (banger_vm_create(&vm, F.ctx, &o) != 0)
		fail_msg("create %s: %s", name, banger_error_last()->message);
	return vm;
}

static void test_modes_after_lifecycle(void **state)
{
	(void)state;
	char *line = NULL;
	assert_int_equal(banger_ssh_client_key(&line, F.ctx), 0);
	banger_free(line);

	/* an imported OCI image: images/, the blob cache */
	const char *src = getenv("BANGER_SOURCE_DIR");
	char *layout = bg_path_join(F.dir, "layout");
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "python3 '%s/tests/hardening/mkimage.py' '%s' t1", src, layout);
	assert_int_equal(system(cmd), 0);
	char *ref = bg_sprintf("%s:t1", layout);
	banger_image_pull_options io = BANGER_IMAGE_PULL_OPTIONS_INIT;
	io.name = "perm-img";
	if (banger_image_import(NULL, F.ctx, ref, &io) != 0)
		fail_msg("image import: %s", banger_error_last()->message);
	free(ref);
	free(layout);

	banger_vm *a = create("perm-a");
	banger_vm *b = create("perm-b");
	char *stats = NULL;
	assert_int_equal(banger_vm_stats(&stats, F.ctx, "perm-a"), 0);
	banger_free(stats);
	assert_int_equal(banger_vm_stop(F.ctx, "perm-a", NULL), 0);
	banger_vm_start_options so = BANGER_VM_START_OPTIONS_INIT;
	so.no_wait = 1;
	assert_int_equal(banger_vm_start(F.ctx, "perm-a", &so), 0);
	assert_int_equal(banger_vm_stop(F.ctx, "perm-b", &FORCE_STOP), 0);
	assert_int_equal(banger_vm_delete(F.ctx, "perm-b", NULL), 0);
	/* perm-a stays running: its sockets, log, metrics and handles exist */

	audit(F.state, F.state, 0);
	audit(F.run, F.run, 0);
	print_message("%d files, directories and sockets audited\n", audited);
	assert_true(audited > 30);
	assert_int_equal(banger_vm_delete(F.ctx, "perm-a", &FORCE_DELETE), 0);
	banger_vm_free(a);
	banger_vm_free(b);
	if (problems)
		fail_msg("%d permission problems (listed above)", problems);
}

static int setup(void **state)
{
	(void)state;
	umask(022);
	fx_setup(&F);
	return 0;
}

static int teardown(void **state)
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
		cmocka_unit_test_setup_teardown(test_modes_after_lifecycle, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
