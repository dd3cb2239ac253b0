/* Getting an import's blobs into the cache, and nothing else.
 *
 * An archive (tar, gzip or zstd) is read in passes rather than once:
 * which members an image needs is known only from index.json or
 * manifest.json, and `docker save` writes those after the layers.  The
 * first pass (bg_archive_scan) keeps only the member list and those two
 * small files; each later pass (bg_archive_extract) copies just the
 * members asked for.  So a member nothing refers to is never written (a
 * 99 KB .tar.zst once put 3 GB of zeros into the cache this way), each
 * member written is held to the size its header (and a manifest, where one
 * declares it) gives, all of them to the import's budget, and a
 * compressed archive may not expand beyond that budget in any pass.
 * Re-reading costs CPU, not disk: an uncompressed archive skips by
 * seeking, and a pass is only made for what the cache lacks. */
#include "image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_MAX (4u << 20)
#define CHUNK (1u << 20)

/* ---- a verified copy into the cache ---- */

int bg_blob_writer_open(bg_blob_writer *w, const char *blobs, uint64_t max, const char *what)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->max = max;
	w->what = what;
	int rc = bg_blob_tmp_open(blobs, &w->fd, &w->tmp);
	if (rc == 0)
		rc = bg_sha256_new(&w->sha);
	return rc;
}

int bg_blob_writer_put(bg_blob_writer *w, const void *buf, size_t len)
{
	if (len > w->max - w->size)
		return bg_error(BANGER_EINVALID, "%s is longer than the %llu bytes it was declared to have",
				w->what, (unsigned long long)w->max);
	bg_sha256_update(w->sha, buf, len);
	w->size += len;
	const char *p = buf;
	while (len) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return bg_error_os(BANGER_EIO, errno, "write %s", w->tmp);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int bg_blob_writer_commit(bg_blob_writer *w, const char *blobs, const char *expected,
			  char got[BG_DIGEST_SIZE], bool *created)
{
	*created = false;
	int rc = bg_digest_final(w->sha, got);
	if (rc)
		return rc;
	if (expected && strcmp(expected, got) != 0)
		return bg_error(BANGER_EVERIFY, "%s: content has digest %s, not %s", w->what, got, expected);
	/* Already there (a docker save member, whose digest we only learn
	 * now): keep the cached file, drop ours. */
	if (bg_blob_cached(blobs, got))
		return 0;
	close(w->fd);
	w->fd = -1;
	rc = bg_blob_commit(blobs, w->tmp, got);
	if (rc == 0) {
		bg_free(w->tmp);
		w->tmp = NULL;
		*created = true;
	}
	return rc;
}

void bg_blob_writer_free(bg_blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	bg_free(w->tmp);
	bg_sha256_free(w->sha);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

/* ---- opening an archive ---- */

static int open_archive(struct archive **out, int *fdp, const char *path)
{
	*out = NULL;
	*fdp = -1;
	struct archive *a = archive_read_new();
	if (!a)
		return bg_error_oom();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		archive_read_free(a);
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", path);
	}
	if (archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK) {
		int rc = bg_error(BANGER_EINVALID, "%s: not a tar archive: %s", path,
				  archive_error_string(a) ? archive_error_string(a) : "?");
		archive_read_free(a);
		close(fd);
		return rc;
	}
	*out = a;
	*fdp = fd;
	return 0;
}

static void close_archive(struct archive *a, int fd)
{
	if (a)
		archive_read_free(a);
	if (fd >= 0)
		close(fd);
}

/* A compressed archive must not expand beyond the budget: reading (even
 * skipping) a decompression bomb costs time in every pass.  next is what
 * the entry about to be read adds. */
static int check_expansion(struct archive *a, const char *path, uint64_t next, uint64_t budget)
{
	if (archive_filter_count(a) <= 1)
		return 0; /* not compressed: the file is as large as it is */
	la_int64_t pos = archive_filter_bytes(a, 0);
	uint64_t at = pos > 0 ? (uint64_t)pos : 0;
	if (next > budget || at > budget - next)
		return bg_error(BANGER_EINVALID, "%s expands to more than the budget of %llu bytes "
				"(--max-bytes, config image_max_bytes; a decompression bomb?)", path,
				(unsigned long long)budget);
	return 0;
}

/* Next regular member with a usable name; 1 at the end. */
static int next_member(struct archive *a, const char *path, uint64_t budget, char name[512],
		       uint64_t *size)
{
	for (;;) {
		struct archive_entry *ae;
		int r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			return 1;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return bg_error(BANGER_EINVALID, "%s: %s", path,
					archive_error_string(a) ? archive_error_string(a) : "bad archive");
		la_int64_t sz = archive_entry_size(ae);
		*size = sz > 0 ? (uint64_t)sz : 0;
		int rc = check_expansion(a, path, *size, budget);
		if (rc)
			return rc;
		const char *raw = archive_entry_pathname(ae);
		if (!raw || archive_entry_filetype(ae) != AE_IFREG || strlen(raw) >= 512)
			continue;
		bg_limits lim;
		bg_limits_default(&lim);
		if (bg_layer_normalize(name, raw, &lim)) {
			banger_error_clear();
			continue;
		}
		return 0;
	}
}

/* ---- pass 1: the member list ---- */

void bg_archive_listing_free(bg_archive_listing *s)
{
	if (!s)
		return;
	bg_free(s->index_json);
	bg_free(s->manifest_json);
	for (size_t i = 0; i < s->count; i++)
		bg_free(s->members[i].name);
	bg_free(s->members);
	memset(s, 0, sizeof(*s));
}

static int read_small(struct archive *a, char **out, size_t *len, const char *name)
{
	bg_buf b = BG_BUF_INIT;
	char chunk[65536];
	for (;;) {
		la_ssize_t n = archive_read_data(a, chunk, sizeof(chunk));
		if (n < 0) {
			bg_buf_free(&b);
			return bg_error(BANGER_EINVALID, "archive member %s: %s", name,
					archive_error_string(a) ? archive_error_string(a) : "?");
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > SMALL_MAX) {
			bg_buf_free(&b);
			return bg_error(BANGER_EINVALID, "archive member %s is larger than %u bytes", name, SMALL_MAX);
		}
		bg_buf_put(&b, chunk, (size_t)n);
	}
	if (b.oom) {
		bg_buf_free(&b);
		return bg_error_oom();
	}
	*len = b.len;
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

static int add_member(bg_archive_listing *s, const char *name, uint64_t size)
{
	/* the first of several members of one name is the one extracted */
	for (size_t i = 0; i < s->count; i++)
		if (strcmp(s->members[i].name, name) == 0)
			return 0;
	if (s->count >= BG_ARCHIVE_MAX_MEMBERS)
		return bg_error(BANGER_EINVALID, "the archive has more than %u members", BG_ARCHIVE_MAX_MEMBERS);
	if (s->count == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 32;
		bg_archive_member *nm = bg_realloc(s->members, nc * sizeof(*nm));
		if (!nm)
			return bg_error_oom();
		s->members = nm;
		s->cap = nc;
	}
	if (!(s->members[s->count].name = bg_strdup(name)))
		return bg_error_oom();
	s->members[s->count].size = size;
	s->count++;
	return 0;
}

int bg_archive_scan(bg_archive_listing *s, const char *path, uint64_t budget)
{
	memset(s, 0, sizeof(*s));
	struct archive *a;
	int fd;
	int rc = open_archive(&a, &fd, path);
	if (rc)
		return rc;
	char name[512];
	uint64_t size;
	while ((rc = next_member(a, path, budget, name, &size)) == 0) {
		if (strcmp(name, "index.json") == 0) {
			bg_free(s->index_json);
			s->index_json = NULL;
			rc = read_small(a, &s->index_json, &s->index_len, name);
		} else if (strcmp(name, "manifest.json") == 0) {
			bg_free(s->manifest_json);
			s->manifest_json = NULL;
			rc = read_small(a, &s->manifest_json, &s->manifest_len, name);
		} else if (strcmp(name, "oci-layout") == 0) {
			s->oci_layout = true;
		}
		if (rc == 0)
			rc = add_member(s, name, size);
		if (rc)
			break;
	}
	close_archive(a, fd);
	if (rc == 1)
		rc = 0;
	if (rc)
		bg_archive_listing_free(s);
	return rc;
}

const bg_archive_member *bg_archive_member_find(const bg_archive_listing *s, const char *name)
{
	char norm[512];
	bg_limits lim;
	bg_limits_default(&lim);
	if (!name || strlen(name) >= sizeof(norm) || bg_layer_normalize(norm, name, &lim)) {
		banger_error_clear();
		return NULL;
	}
	for (size_t i = 0; i < s->count; i++)
		if (strcmp(s->members[i].name, norm) == 0)
			return &s->members[i];
	return NULL;
}

/* ---- later passes: the members asked for ---- */

static int stream_member(struct archive *a, const char *blobs, bg_archive_want *w, uint64_t max)
{
	char what[600];
	snprintf(what, sizeof(what), "archive member %s", w->member);
	bg_blob_writer bw;
	int rc = bg_blob_writer_open(&bw, blobs, max, what);
	while (rc == 0) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = bg_error(BANGER_EINVALID, "%s: %s", what,
				      archive_error_string(a) ? archive_error_string(a) : "?");
			break;
		}
		if (off < 0 || (uint64_t)off != bw.size) {
			rc = bg_error(BANGER_EINVALID, "%s is sparse", what);
			break;
		}
		rc = bg_blob_writer_put(&bw, buf, len);
	}
	if (rc == 0)
		rc = bg_blob_writer_commit(&bw, blobs, w->digest[0] ? w->digest : NULL, w->digest, &w->created);
	if (rc == 0)
		w->written = bw.size;
	bg_blob_writer_free(&bw);
	return rc;
}

int bg_archive_extract(const char *path, const char *blobs, bg_archive_want *w, size_t n,
		       uint64_t expand_budget, uint64_t *budget_left)
{
	struct archive *a;
	int fd;
	int rc = open_archive(&a, &fd, path);
	if (rc)
		return rc;
	char name[512];
	uint64_t size;
	size_t left = 0;
	for (size_t i = 0; i < n; i++)
		left += !w[i].done;
	while (left && (rc = next_member(a, path, expand_budget, name, &size)) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (w[i].done || strcmp(w[i].member, name) != 0)
				continue;
			/* the header must say what the scan (and any manifest) said */
			if (size != w[i].size) {
				rc = bg_error(BANGER_EINVALID, "archive member %s is %llu bytes, expected %llu",
					      name, (unsigned long long)size, (unsigned long long)w[i].size);
				break;
			}
			if (size > *budget_left) {
				rc = bg_error(BANGER_EINVALID, "archive member %s (%llu bytes) is over what is left "
					      "of the budget (%llu bytes; --max-bytes, config image_max_bytes)",
					      name, (unsigned long long)size, (unsigned long long)*budget_left);
				break;
			}
			if ((rc = stream_member(a, blobs, &w[i], size)))
				break;
			*budget_left -= w[i].written;
			w[i].done = true;
			left--;
			break;
		}
		if (rc)
			break;
	}
	close_archive(a, fd);
	if (rc == 1)
		rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		if (!w[i].done)
			rc = bg_error(BANGER_EINVALID, "the archive has no member %s", w[i].member);
	return rc;
}
