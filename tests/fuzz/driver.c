/* Standalone driver for builds without libFuzzer (gcc, the CI build):
 *
 *   fuzz_<target>_replay [-m N] [-s SEED] FILE|DIR...
 *
 * runs LLVMFuzzerTestOneInput once on every file (directories: every
 * regular file in them, in name order), then, with -m N, on N cheap
 * deterministic mutations of each file (truncations, byte flips, inserted
 * and deleted bytes, duplicated chunks, pseudo-random but the same on
 * every run for a given -s).  That is no substitute for a fuzzing
 * campaign, but every CI run then exercises each parser with malformed
 * variants of its seeds under ASan and UBSan.  A crash or failed
 * invariant aborts the process, which fails the test; the name of the
 * input being run is printed first when $FUZZ_VERBOSE is set, and with
 * $FUZZ_SAVE=FILE every input is written to FILE before it runs, so the
 * one that crashed is left there. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long runs;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* xorshift64*: fixed sequence for a given seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void run_one(const uint8_t *data, size_t size)
{
	/* a private copy, exactly size bytes long, so ASan sees overreads */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	if (size)
		memcpy(copy, data, size);
	const char *save = getenv("FUZZ_SAVE");
	if (save) {
		/* the input about to run, so a crash in a mutation can be kept */
		FILE *f = fopen(save, "wb");
		if (f) {
			fwrite(data, 1, size, f);
			fclose(f);
		}
	}
	LLVMFuzzerTestOneInput(copy, size);
	free(copy);
	runs++;
}

static const char *const interesting[] = {
	"\n", "\r\n", "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "\t", "=", "#", "|", "*", "!",
	"@", "/", "..", "%", "\0", "\xff", "-", "--", "0", "-1", "4294967296", "null", "true",
};

static void mutate_and_run(const uint8_t *data, size_t size, unsigned count)
{
	size_t cap = size + 64;
	uint8_t *buf = malloc(cap);
	if (!buf)
		abort();
	for (unsigned i = 0; i < count; i++) {
		size_t n = size;
		if (size)
			memcpy(buf, data, size);
		unsigned kind = (unsigned)(rng() % 6);
		size_t at = n ? (size_t)(rng() % n) : 0;
		switch (kind) {
		case 0: /* truncate */
			n = at;
			break;
		case 1: /* flip bits in one byte */
			if (n)
				buf[at] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 2: /* set one byte to a random value */
			if (n)
				buf[at] = (uint8_t)rng();
			break;
		case 3: /* delete a short run */
			if (n) {
				size_t len = 1 + (size_t)(rng() % 8);
				if (len > n - at)
					len = n - at;
				memmove(buf + at, buf + at + len, n - at - len);
				n -= len;
			}
			break;
		case 4: { /* insert an interesting token */
			const char *tok = interesting[rng() % (sizeof(interesting) / sizeof(interesting[0]))];
			size_t len = tok[0] ? strlen(tok) : 1;
			memmove(buf + at + len, buf + at, n - at);
			memcpy(buf + at, tok, len);
			n += len;
			break;
		}
		default: /* duplicate a chunk of up to 32 bytes in place */
			if (n) {
				size_t len = 1 + (size_t)(rng() % 32);
				if (len > n - at)
					len = n - at;
				memmove(buf + at + len, buf + at, n - at);
				n += len;
			}
			break;
		}
		run_one(buf, n);
	}
	free(buf);
}

static int run_file(const char *path, unsigned mutations)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		abort();
	size_t n;
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
	}
	fclose(f);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "running %s (%zu bytes)\n", path, len);
	run_one(buf, len);
	if (mutations)
		mutate_and_run(buf, len, mutations);
	free(buf);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, unsigned mutations)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path, mutations);
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		size_t plen = strlen(path) + strlen(e->d_name) + 2;
		names[count] = malloc(plen);
		if (!names[count])
			abort();
		snprintf(names[count++], plen, "%s/%s", path, e->d_name);
	}
	closedir(d);
	if (count)
		qsort(names, count, sizeof(*names), cmp_names);
	int rc = 0;
	for (size_t i = 0; i < count; i++) {
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			rc |= run_file(names[i], mutations);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned mutations = 0;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
			mutations = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			rng_state ^= strtoull(argv[++i], NULL, 10) * 0x9e3779b97f4a7c15ull;
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [-m MUTATIONS] [-s SEED] FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int rc = 0;
	for (; i < argc; i++)
		rc |= run_path(argv[i], mutations);
	printf("%lu inputs run\n", runs);
	return rc;
}
