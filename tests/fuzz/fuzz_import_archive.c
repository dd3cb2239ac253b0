/* Archives as `banger image import` reads them: the first pass (member
 * list, index.json, manifest.json) under a budget, the choice of image
 * from index.json or manifest.json, and a later pass copying members into
 * a blob cache.
 *
 * Checked: member names are normalized (no leading '/', no "." or ".."
 * component, no empty one), unique, and found again by name; a compressed
 * input that expands past the budget is refused; a pick names a config and
 * 1..4096 layers; every member copied lands in the cache under the digest
 * of exactly its bytes, and nothing else (no temporary) is left there. */
#include "fuzz.h"
#include "../../libbanger/image/image.h"

#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUDGET (64u << 20)
#define COPY_MAX (256u << 10)

static char cache[64];

static void cleanup(void)
{
	DIR *d = opendir(cache);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' || de->d_name[1] == 't')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	rmdir(cache);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(cache, sizeof(cache), "/tmp/banger-fuzz-import-%d", (int)getpid());
	FUZZ_CHECK(mkdir(cache, 0700) == 0);
	atexit(cleanup);
	return 0;
}

static void check_name(const char *n)
{
	FUZZ_CHECK(n && *n && n[0] != '/');
	for (const char *p = n; *p;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		FUZZ_CHECK(len > 0);
		FUZZ_CHECK(!(len == 1 && p[0] == '.'));
		FUZZ_CHECK(!(len == 2 && p[0] == '.' && p[1] == '.'));
		p += len + (e ? 1 : 0);
	}
}

/* The cache holds only blobs, each under the digest of its content. */
static size_t check_cache(void)
{
	DIR *d = opendir(cache);
	FUZZ_CHECK(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		FUZZ_CHECK(strncmp(de->d_name, ".tmp-", 5) != 0);
		char digest[BG_DIGEST_SIZE], *body = NULL;
		size_t len = 0;
		FUZZ_CHECK(strlen(de->d_name) == 64);
		snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
		FUZZ_CHECK(bg_blob_read(cache, digest, COPY_MAX, &body, &len) == 0);
		bg_free(body);
		unlinkat(dirfd(d), de->d_name, 0);
		n++;
	}
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-import", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	bg_archive_listing s;
	int rc = bg_archive_scan(&s, path, BUDGET);
	if (rc) {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_ENOMEM);
		close(fd);
		return 0;
	}
	FUZZ_CHECK(s.count <= BG_ARCHIVE_MAX_MEMBERS);
	for (size_t i = 0; i < s.count; i++) {
		check_name(s.members[i].name);
		FUZZ_CHECK(bg_archive_member_find(&s, s.members[i].name) == &s.members[i]);
	}
	FUZZ_CHECK(!s.index_json || s.index_len <= (4u << 20));

	if (s.index_json) {
		char digest[BG_DIGEST_SIZE], mt[128], *ref = NULL;
		if (bg_oci_index_pick(s.index_json, s.index_len, NULL, digest, mt, sizeof(mt), &ref) == 0)
			FUZZ_CHECK(bg_digest_valid(digest));
		bg_free(ref);
		ref = NULL;
		if (bg_oci_index_pick(s.index_json, s.index_len, "latest", digest, mt, sizeof(mt), &ref) == 0)
			FUZZ_CHECK(bg_digest_valid(digest));
		bg_free(ref);
	}
	if (s.manifest_json) {
		bg_docker_save_pick p;
		if (bg_docker_save_pick_parse(&p, s.manifest_json, s.manifest_len, NULL) == 0) {
			FUZZ_CHECK(p.config && p.nlayers >= 1 && p.nlayers <= 4096);
			for (size_t i = 0; i < p.nlayers; i++)
				FUZZ_CHECK(p.layers[i]);
			bg_docker_save_pick_free(&p);
		}
	}

	/* copy up to four small members in one pass, digests computed */
	bg_archive_want w[4];
	memset(w, 0, sizeof(w));
	size_t n = 0;
	for (size_t i = 0; i < s.count && n < 4; i++) {
		if (s.members[i].size > COPY_MAX)
			continue;
		w[n].member = s.members[i].name;
		w[n].size = s.members[i].size;
		n++;
	}
	uint64_t left = COPY_MAX;
	rc = bg_archive_extract(path, cache, w, n, BUDGET, &left);
	size_t made = 0;
	for (size_t i = 0; i < n; i++)
		made += w[i].created;
	if (rc == 0) {
		uint64_t total = 0;
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(w[i].done && bg_digest_valid(w[i].digest));
			FUZZ_CHECK(w[i].written == w[i].size);
			total += w[i].written;
		}
		FUZZ_CHECK(left == COPY_MAX - total);
	} else {
		FUZZ_CHECK(rc == BANGER_EINVALID || rc == BANGER_ENOMEM || rc == BANGER_EIO);
	}
	FUZZ_CHECK(check_cache() == made);
	bg_archive_listing_free(&s);
	close(fd);
	return 0;
}
