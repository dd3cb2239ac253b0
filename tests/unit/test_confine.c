/* Confined helper programs (libbanger/core/confine.c): what the child
 * really has, read from its own /proc/self/status, and what it may
 * write (only the one file it was given, where Landlock exists). */
#include "helpers.h"

#include "../../libbanger/core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *dir;

static int setup(void **st)
{
	(void)st;
	dir = test_tmpdir();
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	test_rmrf(dir);
	free(dir);
	return 0;
}

static bool have_landlock(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, 1u) >= 1;
}

static const char *field(const char *text, const char *name)
{
	static char val[128];
	const char *p = strstr(text, name);
	assert_non_null(p);
	p += strlen(name);
	while (*p == ':' || *p == '\t' || *p == ' ')
		p++;
	size_t n = strcspn(p, "\n");
	snprintf(val, sizeof(val), "%.*s", (int)n, p);
	return val;
}

static void test_child_has_nothing(void **st)
{
	(void)st;
	char file[4200], other[4200], script[9000];
	snprintf(file, sizeof(file), "%s/disk.img", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	assert_int_equal(bg_write_file_atomic(file, "old", 3, 0600), 0);
	/* A descriptor the host program leaked (no O_CLOEXEC). */
	int leaked = open(file, O_RDONLY);
	assert_true(leaked >= 0);
	snprintf(script, sizeof(script),
		 "cat /proc/self/status; "
		 "echo new > '%s' && echo wrote-file; "
		 "echo x > '%s' && echo wrote-other; "
		 "[ -e /proc/self/fd/%d ] && echo leaked-fd; exit 0",
		 file, other, leaked);
	const char *argv[] = { "sh", "-c", script, NULL };
	int status = -1;
	char *out = NULL, *err = NULL;
	bool landlocked = true;
	assert_int_equal(bg_run_confined(&status, &out, &err, argv, 30000, file, &landlocked), 0);
	close(leaked);
	assert_int_equal(status, 0);
	assert_string_equal(field(out, "NoNewPrivs"), "1");
	assert_string_equal(field(out, "CapEff"), "0000000000000000");
	assert_string_equal(field(out, "CapPrm"), "0000000000000000");
	assert_string_equal(field(out, "CapAmb"), "0000000000000000");
	if (geteuid() == 0) /* only root can (and must) empty it */
		assert_string_equal(field(out, "CapBnd"), "0000000000000000");
	assert_null(strstr(out, "leaked-fd"));
	assert_non_null(strstr(out, "wrote-file")); /* the one file it works on */
	assert_int_equal(landlocked, have_landlock());
	if (landlocked) {
		assert_null(strstr(out, "wrote-other"));
		assert_int_equal(access(other, F_OK), -1);
	}
	bg_free(out);
	bg_free(err);
}

static void test_missing_program(void **st)
{
	(void)st;
	char file[4200];
	snprintf(file, sizeof(file), "%s/f", dir);
	assert_int_equal(bg_write_file_atomic(file, "", 0, 0600), 0);
	const char *argv[] = { "no-such-program-banger", NULL };
	int status;
	assert_int_equal(bg_run_confined(&status, NULL, NULL, argv, 1000, file, NULL), BANGER_EUNSUPPORTED);
	/* The file to work on must exist (it is the one rule that matters). */
	const char *sh[] = { "true", NULL };
	char missing[4200];
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	if (have_landlock())
		assert_int_not_equal(bg_run_confined(&status, NULL, NULL, sh, 1000, missing, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_has_nothing),
		cmocka_unit_test(test_missing_program),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
