/* Root tier: real kernel objects.  The test enters a network namespace of
 * its own (unshare) before touching taps and nftables, so nothing leaks
 * into the host's network; loop devices are global and are checked
 * against /sys after each test. */
#include "../../unit/helpers.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../libbanger/host/host.h"

static char *tmp;

static int count_loops_backed_by(const char *dir)
{
	char **devs;
	size_t n;
	assert_int_equal(bg_loop_list_under(dir, &devs, &n), 0);
	bg_strv_free(devs, n);
	return (int)n;
}

static void make_file(const char *path, off_t size, const char *data_at_start)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	if (data_at_start)
		assert_true(pwrite(fd, data_at_start, strlen(data_at_start), 0) > 0);
	/* data in the middle too, leaving holes around it */
	assert_true(pwrite(fd, "middle", 6, size / 2) == 6);
	close(fd);
}

static void test_loop_attach_detach(void **state)
{
	(void)state;
	char *img = bg_path_join(tmp, "base.img");
	make_file(img, 8 << 20, "hello");
	char *dev = NULL;
	assert_int_equal(bg_loop_attach(img, true, &dev, NULL), 0);
	assert_non_null(dev);
	assert_int_equal(count_loops_backed_by(tmp), 1);
	/* read-only really is read-only */
	char ro[128];
	snprintf(ro, sizeof(ro), "/sys/block/%s/ro", dev + 5);
	char *v = NULL;
	assert_int_equal(bg_read_file(&v, NULL, ro, 16), 0);
	assert_int_equal(v[0], '1');
	free(v);
	char buf[5];
	int fd = open(dev, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, 5), 5);
	assert_memory_equal(buf, "hello", 5);
	close(fd);
	assert_int_equal(bg_loop_detach(dev), 0);
	assert_int_equal(count_loops_backed_by(tmp), 0);
	assert_int_equal(bg_loop_detach(dev), 0); /* already gone is fine */
	free(dev);

	/* autoclear: the device lives while someone holds it open */
	int keep = -1;
	assert_int_equal(bg_loop_attach(img, true, &dev, &keep), 0);
	assert_true(keep >= 0);
	int user = open(dev, O_RDONLY); /* the consumer (dm, a VMM) */
	close(keep);
	assert_int_equal(count_loops_backed_by(tmp), 1);
	close(user);
	for (int i = 0; i < 100 && count_loops_backed_by(tmp) != 0; i++)
		bg_sleep_ms(20);
	assert_int_equal(count_loops_backed_by(tmp), 0);
	free(dev);
	free(img);
}

static void test_overlay_clone(void **state)
{
	(void)state;
	char *src = bg_path_join(tmp, "rootfs.img");
	char *dst = bg_path_join(tmp, "system.img");
	make_file(src, 64 << 20, "rootfs");
	bg_overlay_kind kind;
	assert_int_equal(bg_overlay_clone(src, dst, &kind), 0);
	printf("overlay strategy on %s: %s\n", tmp, bg_overlay_kind_name(kind));
	assert_true(kind == BG_OVERLAY_REFLINK || kind == BG_OVERLAY_COPY);
	char cmd[8400];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", src, dst);
	assert_int_equal(system(cmd), 0);
	struct stat st;
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, 64 << 20);
	/* sparse: far fewer blocks than the apparent size */
	assert_true((off_t)st.st_blocks * 512 < (off_t)(8 << 20));
	assert_int_equal(st.st_mode & 0777, 0600);
	/* writes to the clone never reach the source */
	int fd = open(dst, O_WRONLY);
	assert_int_equal(pwrite(fd, "CHANGED", 7, 0), 7);
	close(fd);
	char *data;
	assert_int_equal(bg_read_file(&data, NULL, src, 128 << 20), 0);
	assert_memory_equal(data, "rootfs", 6);
	free(data);
	free(src);
	free(dst);
}

static void test_tap(void **state)
{
	(void)state;
	const char *name = "bgtest0001";
	assert_false(bg_link_exists(name));
	assert_int_equal(bg_tap_create(name, "172.31.0.1", 30), 0);
	assert_true(bg_link_exists(name));
	assert_int_equal(bg_tap_create(name, "172.31.0.1", 30), 0); /* idempotent */
	assert_int_equal(system("ip -4 addr show dev bgtest0001 | grep -q '172.31.0.1/30'"), 0);
	assert_int_equal(system("ip link show dev bgtest0001 | grep -q 'UP'"), 0);
	assert_int_equal(system("ip -d link show dev bgtest0001 | grep -q 'tun type tap'"), 0);
	char **names;
	size_t n;
	assert_int_equal(bg_link_list("bgtest", &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], name);
	bg_strv_free(names, n);
	assert_int_equal(bg_tap_delete(name), 0);
	assert_false(bg_link_exists(name));
	assert_int_equal(bg_tap_delete(name), 0); /* already gone */
	assert_int_equal(bg_tap_create("averyveryverylongname", NULL, 0), BANGER_EINVALID);
}

static void test_nat(void **state)
{
	(void)state;
	if (system("command -v nft >/dev/null") != 0)
		skip();
	const char *table = "banger_testtbl";
	assert_int_equal(bg_tap_create("bgnat0001", "172.31.0.5", 30), 0);
	assert_int_equal(bg_nat_add(table, "0000aaaa", "bgnat0001", "172.31.0.6"), 0);
	assert_int_equal(bg_nat_add(table, "0000bbbb", "bgnat0002", "172.31.0.10"), 0);
	assert_int_equal(bg_nat_add(table, "0000aaaa", "bgnat0001", "172.31.0.6"), 0); /* replace, not duplicate */
	assert_int_equal(system("test $(nft list table ip banger_testtbl | grep -c 'banger-vm:0000aaaa') -eq 3"), 0);
	assert_int_equal(system("nft list table ip banger_testtbl | grep -q 'ip saddr 172.31.0.6 oifname != \"bgnat0001\" masquerade'"), 0);
	char **ids;
	size_t n;
	assert_int_equal(bg_nat_list(table, &ids, &n), 0);
	assert_int_equal(n, 2);
	bg_strv_free(ids, n);
	char *fwd;
	assert_int_equal(bg_read_file(&fwd, NULL, "/proc/sys/net/ipv4/ip_forward", 16), 0);
	assert_int_equal(fwd[0], '1');
	free(fwd);
	assert_int_equal(bg_nat_remove(table, "0000aaaa"), 0);
	assert_int_equal(system("nft list table ip banger_testtbl | grep -q 'banger-vm:0000aaaa'"), 256);
	assert_int_equal(system("nft list table ip banger_testtbl | grep -q 'banger-vm:0000bbbb'"), 0);
	assert_int_equal(bg_nat_remove(table, "0000aaaa"), 0); /* already gone */
	assert_int_equal(bg_nat_remove(table, "0000bbbb"), 0);
	assert_int_equal(bg_nat_list(table, &ids, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(bg_nat_remove("banger_nosuchtable", "x"), 0);
	assert_int_equal(bg_tap_delete("bgnat0001"), 0);
}

static void test_dm_snapshot(void **state)
{
	(void)state;
	if (!bg_dm_available()) {
		printf("SKIP dm-snapshot: this kernel has no device-mapper (/dev/mapper/control "
		       "missing, dm-mod not loaded); system disks use reflink/copy here\n");
		skip();
	}
	char *base = bg_path_join(tmp, "dmbase.img");
	char *cow = bg_path_join(tmp, "dmcow.img");
	make_file(base, 16 << 20, "base");
	make_file(cow, 16 << 20, NULL);
	char *bl, *cl;
	assert_int_equal(bg_loop_attach(base, true, &bl, NULL), 0);
	assert_int_equal(bg_loop_attach(cow, false, &cl, NULL), 0);
	assert_int_equal(bg_dm_snapshot_create("bg-test-snap", bl, cl, (16 << 20) / 512), 0);
	assert_true(bg_path_exists("/dev/mapper/bg-test-snap"));
	assert_int_equal(bg_dm_remove("bg-test-snap"), 0);
	assert_int_equal(bg_dm_remove("bg-test-snap"), 0);
	bg_loop_detach(cl);
	bg_loop_detach(bl);
	free(bl);
	free(cl);
	free(base);
	free(cow);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: root tier needs root (tap, loop, nftables)\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		printf("SKIP: cannot create a network namespace\n");
		return 77;
	}
	system("ip link set lo up");
	tmp = test_tmpdir();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_attach_detach),
		cmocka_unit_test(test_overlay_clone),
		cmocka_unit_test(test_tap),
		cmocka_unit_test(test_nat),
		cmocka_unit_test(test_dm_snapshot),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	test_rmrf(tmp);
	free(tmp);
	return rc;
}
