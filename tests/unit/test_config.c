/* Config: defaults, overrides, errors naming the line. */
#include "helpers.h"
#include "../../libbanger/config/config.h"

static void test_defaults_and_file(void **state)
{
	(void)state;
	bg_config c;
	assert_int_equal(bg_config_load(&c, "/nonexistent/config"), 0);
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
	assert_int_equal(bg_config_load(&c, NULL), 0);
	assert_int_equal(bg_config_parse(&c, "vmm = qemu\nthis is wrong\n", "cfg"), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "cfg:2"));
	assert_int_equal(bg_config_parse(&c, "colour = blue\n", "cfg"), BANGER_EINVALID);
	assert_non_null(strstr(banger_error_last()->message, "unknown key 'colour'"));
	assert_int_equal(bg_config_parse(&c, "vcpus = many\n", "cfg"), 0);
	uint32_t v;
	assert_int_equal(bg_config_get_u32(&c, "vcpus", &v), BANGER_EINVALID);
	bg_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_file),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
