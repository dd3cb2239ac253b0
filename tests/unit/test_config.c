/* Config: defaults, overrides, errors naming the line. */
#include "helpers.h"
#include "../../libbanger/config/config.h"

static void test_defaults_and_file(void **state)
{
	(void)state;
	bg_config c;
	assert_int_equal(bg_config_load(&c, "/nonexistent/config", false), 0);
	assert_string_equal(bg_config_get(&c, "vmm"), "auto");
	uint32_t v;
	assert_int_equal(bg_config_get_u32(&c, "vcpus", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(bg_config_parse(&c, "# comment\n\n vmm = qemu \nsubnet=\"10.9.0.0/16\"\n", "t"), 0);
	assert_string_equal(bg_config_get(&c, "vmm"), "qemu");
	assert_string_equal(bg_config_get(&c, "subnet"), "10.9.0.0/16");
	assert_null(bg_config_get(&c, "nope"));
	bg_config_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	bg_config c;
	assert_int_equal(bg_config_load(&c, NULL, false), 0);
	assert_int_equal(bg_config_parse(&c, "vmm = qemu\nthis is wrong\n", "cfg"), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "cfg:2"));
	assert_int_equal(bg_config_parse(&c, "colour = blue\n", "cfg"), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "unknown key 'colour'"));
	bg_config_free(&c);
}

/* Every value is checked at load, with file:line: a typo fails there, not
 * later in the command that happens to read it. */
static void test_typed_values(void **state)
{
	(void)state;
	static const struct { const char *text, *want; } bad[] = {
		{ "vmm = kvmtool\n", "cfg:1: vmm = 'kvmtool': must be one of: auto firecracker qemu" },
		{ "# c\nvcpus = many\n", "cfg:2: vcpus = 'many': must be a whole number from 1 to 255" },
		{ "vcpus = 0\n", "cfg:1: vcpus = '0'" },
		{ "vcpus = 256\n", "cfg:1: vcpus = '256'" },
		{ "vcpus = -1\n", "cfg:1: vcpus = '-1'" },
		{ "vcpus = 99999999999999999999\n", "cfg:1: vcpus" },
		{ "memory_mib = 8\n", "cfg:1: memory_mib = '8'" },
		{ "ready_timeout = 1.5\n", "cfg:1: ready_timeout" },
		{ "disk_size = lots\n", "cfg:1: disk_size = 'lots': must be a size" },
		{ "disk_size = 8Q\n", "cfg:1: disk_size" },
		{ "disk_size = 100\n", "cfg:1: disk_size = '100'" }, /* 100 bytes: under 1M */
		{ "image_headroom = 2T\n", "cfg:1: image_headroom" },
		{ "subnet = 10.0.0.0/30\n", "cfg:1: subnet = '10.0.0.0/30': must be an IPv4 range" },
		{ "subnet = nope\n", "cfg:1: subnet" },
		{ "kernel_catalog = ftp://x/c.json\n", "cfg:1: kernel_catalog" },
		{ "firecracker_bin = bin/fc\n", "cfg:1: firecracker_bin" },
		{ "qemu_bin =\n", "cfg:1: qemu_bin" },
		{ "ssh_user =\n", "cfg:1: ssh_user" },
		{ "ssh_user = -oProxyCommand=x\n", "cfg:1: ssh_user" },
		{ "default_kernel = a b\n", "cfg:1: default_kernel" },
		{ "insecure_registries = a;b\n", "cfg:1: insecure_registries" },
		{ "vmm = \"qemu\x1b[2J\"\n", "cfg:1: vmm = 'qemu\\x1b[2J': contains a control character" },
	};
	for (size_t i = 0; i < BG_ARRAY_SIZE(bad); i++) {
		bg_config c;
		assert_int_equal(bg_config_load(&c, NULL, false), 0);
		int rc = bg_config_parse(&c, bad[i].text, "cfg");
		if (rc != BANGER_EINVALID)
			fail_msg("accepted: %s", bad[i].text);
		const char *m = banger_error_last()->message;
		if (!strstr(m, bad[i].want))
			fail_msg("'%s' gave '%s'", bad[i].text, m);
		/* the refused value did not replace the default */
		assert_non_null(bg_config_get(&c, "vmm"));
		assert_string_equal(bg_config_get(&c, "vcpus"), "2");
		bg_config_free(&c);
	}
	static const char *const good =
		"vmm = firecracker\nvcpus = 255\nmemory_mib = 16\ndisk_size = 1M\nimage_headroom = 0\n"
		"ready_timeout = 86400\nsubnet = 10.200.0.0/28\nkernel_catalog = https://k.example/c.json\n"
		"kernel_catalog = ./catalog.json\nfirecracker_bin = /opt/fc/firecracker\nqemu_bin = qemu-kvm\n"
		"default_kernel = generic-6.1\ninsecure_registries = 127.0.0.1:5000, [::1]:5000,http://reg.lan/\n"
		"ssh_user = ubuntu\n";
	bg_config c;
	assert_int_equal(bg_config_load(&c, NULL, false), 0);
	assert_int_equal(bg_config_parse(&c, good, "cfg"), 0);
	assert_string_equal(bg_config_get(&c, "kernel_catalog"), "./catalog.json");
	bg_config_free(&c);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A NUL byte used to end the text silently (the keys after it were
 * dropped); an explicit path that does not exist used to mean defaults. */
static void test_file_checks(void **state)
{
	(void)state;
	char *dir = test_tmpdir();
	char path[4200];
	snprintf(path, sizeof(path), "%s/config", dir);
	static const char text[] = "vmm = qemu\nvcpus = 4\0\nvcpus = 8\n";
	write_bytes(path, text, sizeof(text) - 1);
	bg_config c;
	assert_int_equal(bg_config_load(&c, path, false), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "config:2: NUL byte"));

	char missing[4300];
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	assert_int_equal(bg_config_load(&c, missing, true), BANGER_ENOTFOUND);
	assert_non_null(strstr(banger_error_last()->message, "does not exist"));
	assert_int_equal(bg_config_load(&c, missing, false), 0); /* the default path may be absent */
	assert_string_equal(bg_config_get(&c, "vmm"), "auto");
	bg_config_free(&c);

	write_bytes(path, "vmm = qemu\nvcpus = 4\n", 21);
	assert_int_equal(bg_config_load(&c, path, true), 0);
	assert_string_equal(bg_config_get(&c, "vcpus"), "4");
	bg_config_free(&c);
	test_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_typed_values),
		cmocka_unit_test(test_file_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
