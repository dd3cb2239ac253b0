/* Shared helpers for cmocka unit tests (which may reach internals). */
#ifndef BG_TEST_HELPERS_H
#define BG_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mkdtemp under $TMPDIR (or /tmp); never NULL (the test fails instead). */
static inline char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(4096);
	assert_non_null(p);
	snprintf(p, 4096, "%s/banger-test-XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(p));
	return p;
}

static inline void test_rmrf(const char *path)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

#endif
