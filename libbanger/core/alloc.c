/* Allocation wrappers: the single place where the library allocates, so
 * that the allocation-failure test mode can fail the Nth call. */
#include "core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#ifdef BANGER_TEST_HOOKS
static atomic_uint_fast64_t alloc_count;
static atomic_uint_fast64_t fail_at; /* absolute count that fails; 0 = never */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
	const char *s = getenv("BANGER_TEST_FAIL_ALLOC");
	if (s && *s) {
		char *end;
		unsigned long long n = strtoull(s, &end, 10);
		if (*end == '\0' && n > 0)
			atomic_store(&fail_at, (uint_fast64_t)n);
	}
}

static bool should_fail(void)
{
	pthread_once(&env_once, read_env);
	uint_fast64_t n = atomic_fetch_add(&alloc_count, 1) + 1;
	uint_fast64_t f = atomic_load(&fail_at);
	return f != 0 && n == f;
}

void bg_alloc_fail_at(uint64_t n)
{
	pthread_once(&env_once, read_env);
	atomic_store(&fail_at, n ? atomic_load(&alloc_count) + n : 0);
}

uint64_t bg_alloc_count(void)
{
	return atomic_load(&alloc_count);
}
#else
/* Without test hooks (-DBANGER_TESTS=OFF, the installed library) nothing
 * is counted and nothing fails on purpose; $BANGER_TEST_FAIL_ALLOC is not
 * read. */
static bool should_fail(void)
{
	return false;
}

void bg_alloc_fail_at(uint64_t n)
{
	(void)n;
}

uint64_t bg_alloc_count(void)
{
	return 0;
}
#endif

void *bg_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *bg_calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *bg_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void bg_free(void *p)
{
	free(p);
}

char *bg_strndup(const char *s, size_t n)
{
	if (!s)
		return NULL;
	size_t len = strnlen(s, n);
	char *r = bg_malloc(len + 1);
	if (!r)
		return NULL;
	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

char *bg_strdup(const char *s)
{
	return s ? bg_strndup(s, strlen(s)) : NULL;
}

char *bg_vsprintf(const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return NULL;
	char *r = bg_malloc((size_t)n + 1);
	if (!r)
		return NULL;
	vsnprintf(r, (size_t)n + 1, fmt, ap);
	return r;
}

char *bg_sprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *r = bg_vsprintf(fmt, ap);
	va_end(ap);
	return r;
}

BANGER_EXTERN(void) banger_free(void *ptr)
{
	free(ptr);
}
