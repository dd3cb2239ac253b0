/* The tap pool description (host/pool.c): names, addresses, the JSON a
 * setup writes and a user's banger reads, and the ownership rule under
 * which it is trusted. */
#include "helpers.h"

#include <sys/stat.h>
#include <unistd.h>

#include "../../libbanger/host/pool.h"

static bg_pool sample(void)
{
	bg_pool p;
	memset(&p, 0, sizeof(p));
	snprintf(p.user, sizeof(p.user), "alice");
	p.uid = 1001;
	p.gid = 1001;
	snprintf(p.subnet_cidr, sizeof(p.subnet_cidr), "172.31.4.0/24");
	assert_int_equal(bg_subnet_parse(&p.subnet, p.subnet_cidr), 0);
	p.vms = 8;
	p.nat = true;
	bg_pool_nft_table(p.nft_table, p.uid);
	return p;
}

static void test_names_and_slots(void **state)
{
	(void)state;
	char tap[IFNAMSIZ], host[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];
	assert_int_equal(bg_pool_tap_name(tap, 1000, 3), 0);
	assert_string_equal(tap, "bgp1000n3");
	assert_int_equal(bg_pool_tap_name(tap, 4000000000u, 255), BANGER_EINVALID);
	bg_pool p = sample();
	assert_int_equal(bg_pool_slot(&p, 2, tap, host, guest), 0);
	assert_string_equal(tap, "bgp1001n2");
	assert_string_equal(host, "172.31.4.9");
	assert_string_equal(guest, "172.31.4.10");
	assert_int_equal(bg_pool_slot(&p, 8, tap, NULL, NULL), BANGER_EINVALID);
	char table[32];
	bg_pool_nft_table(table, 1001);
	assert_string_equal(table, "banger_pool_1001");
}

static void test_json(void **state)
{
	(void)state;
	bg_pool p = sample(), q;
	char *j = bg_pool_to_json(&p);
	assert_non_null(j);
	assert_int_equal(bg_pool_from_json(&q, j, "t"), 0);
	assert_string_equal(q.user, "alice");
	assert_int_equal(q.uid, 1001);
	assert_int_equal(q.vms, 8);
	assert_true(q.nat);
	assert_string_equal(q.nft_table, "banger_pool_1001");
	assert_int_equal(q.subnet.prefix, 24);
	bg_free(j);

	static const char *bad[] = {
		"not json",
		/* an unknown key: a newer format is not half-read */
		"{\"format\":1,\"user\":\"a\",\"uid\":1,\"gid\":1,\"subnet\":\"172.31.0.0/24\",\"vms\":1,"
		"\"nat\":false,\"nft_table\":\"\",\"extra\":1}",
		"{\"format\":2,\"user\":\"a\",\"uid\":1,\"gid\":1,\"subnet\":\"172.31.0.0/24\",\"vms\":1,"
		"\"nat\":false,\"nft_table\":\"\"}",
		/* 65 taps do not fit a /24 of /30s */
		"{\"format\":1,\"user\":\"a\",\"uid\":1,\"gid\":1,\"subnet\":\"172.31.0.0/24\",\"vms\":65,"
		"\"nat\":false,\"nft_table\":\"\"}",
		"{\"format\":1,\"user\":\"a\",\"uid\":1,\"gid\":1,\"subnet\":\"172.31.0.0/33\",\"vms\":1,"
		"\"nat\":false,\"nft_table\":\"\"}",
		/* NAT in a table that is not the pool's */
		"{\"format\":1,\"user\":\"a\",\"uid\":1,\"gid\":1,\"subnet\":\"172.31.0.0/24\",\"vms\":1,"
		"\"nat\":true,\"nft_table\":\"filter\"}",
		"{\"format\":1,\"user\":\"\",\"uid\":1,\"gid\":1,\"subnet\":\"172.31.0.0/24\",\"vms\":1,"
		"\"nat\":false,\"nft_table\":\"\"}",
		"{\"format\":1,\"user\":\"a\",\"uid\":-1,\"gid\":1,\"subnet\":\"172.31.0.0/24\",\"vms\":1,"
		"\"nat\":false,\"nft_table\":\"\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(bg_pool_from_json(&q, bad[i], "bad"), BANGER_EINVALID);
		banger_error_clear();
	}
}

/* Saved by root, trusted while root alone can change it. */
static void test_trust(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	setenv("BANGER_SYSTEM_DIR", dir, 1);
	assert_string_equal(bg_system_dir(), dir);
	bg_pool p = sample(), q;
	assert_int_equal(bg_pool_load(&q, p.uid), BANGER_ENOTFOUND);
	banger_error_clear();
	if (geteuid() != 0) {
		/* only root writes one; a user's own directory is not trusted */
		assert_int_equal(bg_pool_save(&p), BANGER_EPERM);
	} else {
		chmod(dir, 0755);
		assert_int_equal(bg_pool_save(&p), 0);
		assert_int_equal(bg_pool_load(&q, p.uid), 0);
		assert_string_equal(q.user, "alice");
		bg_pool *all = NULL;
		size_t n = 0;
		assert_int_equal(bg_pool_list(&all, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(all[0].uid, 1001);
		bg_free(all);
		char *path = bg_pool_path(p.uid);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0644);
		assert_int_equal(st.st_uid, 0);
		/* writable by others: refused, and the message says why */
		chmod(path, 0666);
		assert_int_equal(bg_pool_load(&q, p.uid), BANGER_EPERM);
		assert_non_null(strstr(banger_error_last()->message, "root alone"));
		banger_error_clear();
		chmod(path, 0644);
		char pools[4200];
		snprintf(pools, sizeof(pools), "%s/pools", dir);
		chmod(pools, 0777);
		assert_int_equal(bg_pool_load(&q, p.uid), BANGER_EPERM);
		banger_error_clear();
		chmod(pools, 0755);
		/* owned by someone else */
		assert_int_equal(chown(path, 1001, 1001), 0);
		assert_int_equal(bg_pool_load(&q, p.uid), BANGER_EPERM);
		banger_error_clear();
		assert_int_equal(chown(path, 0, 0), 0);
		/* the file of another uid, renamed: refused */
		char other[4200];
		snprintf(other, sizeof(other), "%s/pools/1002.json", dir);
		assert_int_equal(rename(path, other), 0);
		assert_int_equal(bg_pool_load(&q, 1002), BANGER_EINVALID);
		banger_error_clear();
		assert_int_equal(bg_pool_remove(1002), 0);
		assert_int_equal(bg_pool_remove(1002), 0);
		bg_free(path);
	}
	unsetenv("BANGER_SYSTEM_DIR");
	assert_string_equal(bg_system_dir(), "/etc/banger");
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_slots),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_trust),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
