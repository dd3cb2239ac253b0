/* The CLI's option parser. */
#include "helpers.h"
#include "../../cli/cli.h"

static bool flag_json, flag_nat;
static const char *name, *image;
static cli_list envs;
static const cli_opt opts[] = {
	{ "json", 0, OPT_FLAG, &flag_json, "", NULL },
	{ "nat", 0, OPT_FLAG, &flag_nat, "", NULL },
	{ "name", 'n', OPT_STRING, &name, "", NULL },
	{ "image", 0, OPT_STRING, &image, "", NULL },
	{ "env", 'e', OPT_LIST, &envs, "", NULL },
	{ 0 },
};

static void reset(void)
{
	flag_json = flag_nat = false;
	name = image = NULL;
	free(envs.items);
	envs.items = NULL;
	envs.count = 0;
}

static int parse(int argc, char **argv, const char ***pos, int *npos, char ***rest, int *nrest, bool *help)
{
	char err[128];
	reset();
	return cli_parse(opts, argc, argv, pos, npos, rest, nrest, help, err, sizeof(err));
}

static void test_mixed(void **state)
{
	(void)state;
	char *argv[] = { "box", "--json", "--name=web", "-e", "A=1", "--env", "B=2", "--image", "deb", "x", "--", "uname", "-a" };
	const char **pos;
	int npos, nrest;
	char **rest;
	bool help;
	assert_int_equal(parse(13, argv, &pos, &npos, &rest, &nrest, &help), 0);
	assert_true(flag_json);
	assert_false(flag_nat);
	assert_string_equal(name, "web");
	assert_string_equal(image, "deb");
	assert_int_equal(envs.count, 2);
	assert_string_equal(envs.items[1], "B=2");
	assert_int_equal(npos, 2);
	assert_string_equal(pos[0], "box");
	assert_string_equal(pos[1], "x");
	assert_int_equal(nrest, 2);
	assert_string_equal(rest[0], "uname");
	assert_false(help);
	free(pos);
}

static void test_errors(void **state)
{
	(void)state;
	const char **pos;
	int npos, nrest;
	char **rest;
	bool help;
	char *a1[] = { "--bogus" };
	assert_int_equal(parse(1, a1, &pos, &npos, &rest, &nrest, &help), EXIT_USAGE);
	free(pos);
	char *a2[] = { "--name" };
	assert_int_equal(parse(1, a2, &pos, &npos, &rest, &nrest, &help), EXIT_USAGE);
	free(pos);
	char *a3[] = { "--json=yes" };
	assert_int_equal(parse(1, a3, &pos, &npos, &rest, &nrest, &help), EXIT_USAGE);
	free(pos);
	char *a4[] = { "--", "x" };
	char err[64];
	assert_int_equal(cli_parse(opts, 2, a4, &pos, &npos, NULL, NULL, &help, err, sizeof(err)), EXIT_USAGE);
	free(pos);
	char *a5[] = { "-n4", "--help" };
	assert_int_equal(parse(2, a5, &pos, &npos, &rest, &nrest, &help), 0);
	assert_string_equal(name, "4");
	assert_true(help);
	free(pos);
	reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
