/* Shared helpers for banger's fuzz targets.
 *
 * Every target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Built with clang and -DBANGER_FUZZ=ON they link
 * libFuzzer; otherwise driver.c replays the seed corpus (and cheap
 * deterministic mutations of it) as an ordinary test.
 *
 * A target must never leak, and must check what it can about the result
 * (round trips, invariants): FUZZ_CHECK aborts with the reason, which both
 * libFuzzer and the replay driver report as a failure. */
#ifndef BG_FUZZ_H
#define BG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* A NUL-terminated copy of the input (malloc'd; never NULL). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Split off the first line (without its '\n') as a NUL-terminated string;
 * the input pointer and size advance past it.  With no newline the whole input is the
 * line. */
static inline char *fuzz_take_line(const uint8_t **data, size_t *size)
{
	const uint8_t *nl = *size ? memchr(*data, '\n', *size) : NULL;
	size_t n = nl ? (size_t)(nl - *data) : *size;
	char *s = fuzz_cstr(*data, n);
	*data += nl ? n + 1 : n;
	*size -= nl ? n + 1 : n;
	return s;
}

/* Take one byte (0 when exhausted). */
static inline uint8_t fuzz_take_byte(const uint8_t **data, size_t *size)
{
	if (!*size)
		return 0;
	uint8_t b = **data;
	(*data)++;
	(*size)--;
	return b;
}

#endif
