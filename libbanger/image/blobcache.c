/* The content-addressed blob cache: <cache>/blobs/sha256/<hex>.  A blob
 * reaches its final name only by rename after its digest was checked, so
 * an interrupted download never leaves a half blob there. */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *bg_blob_path(const char *blobs_dir, const char *digest)
{
	if (!bg_digest_valid(digest))
		return NULL;
	return bg_sprintf("%s/%s", blobs_dir, digest + 7);
}

bool bg_blob_cached(const char *blobs_dir, const char *digest)
{
	char *p = bg_blob_path(blobs_dir, digest);
	struct stat st;
	bool ok = p && lstat(p, &st) == 0 && S_ISREG(st.st_mode);
	bg_free(p);
	return ok;
}

int bg_blob_tmp_open(const char *blobs_dir, int *fd, char **tmp_path)
{
	*fd = -1;
	*tmp_path = NULL;
	int rc = bg_mkdir_p(blobs_dir, 0700);
	if (rc)
		return rc;
	unsigned char rnd[8];
	char hex[17];
	if ((rc = bg_random_bytes(rnd, sizeof(rnd))))
		return rc;
	bg_hex(hex, rnd, sizeof(rnd));
	char *p = bg_sprintf("%s/.tmp-%s", blobs_dir, hex);
	if (!p)
		return bg_error_oom();
	int f = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0) {
		rc = bg_error_os(bg_code_from_errno(errno), errno, "create %s", p);
		bg_free(p);
		return rc;
	}
	*fd = f;
	*tmp_path = p;
	return 0;
}

int bg_blob_commit(const char *blobs_dir, const char *tmp_path, const char *digest)
{
	char *final = bg_blob_path(blobs_dir, digest);
	if (!final)
		return bg_digest_check(digest, "blob") ? BANGER_EINVALID : bg_error_oom();
	int rc = 0;
	if (rename(tmp_path, final) != 0)
		rc = bg_error_os(BANGER_EIO, errno, "rename %s to %s", tmp_path, final);
	bg_free(final);
	return rc;
}

int bg_blob_put(const char *blobs_dir, const char *digest, const void *data, size_t len)
{
	char got[BG_DIGEST_SIZE];
	int rc = bg_digest_of(got, data, len);
	if (rc)
		return rc;
	if (strcmp(got, digest) != 0)
		return bg_error(BANGER_EVERIFY, "blob %s has digest %s", digest, got);
	char *final = bg_blob_path(blobs_dir, digest);
	if (!final)
		return bg_error_oom();
	if ((rc = bg_mkdir_p(blobs_dir, 0700)) == 0)
		rc = bg_write_file_atomic(final, data, len, 0600);
	bg_free(final);
	return rc;
}

int bg_blob_read(const char *blobs_dir, const char *digest, size_t max, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	char *p = bg_blob_path(blobs_dir, digest);
	if (!p)
		return bg_digest_check(digest, "blob") ? BANGER_EINVALID : bg_error_oom();
	char *data = NULL;
	size_t n = 0;
	int rc = bg_read_file(&data, &n, p, max);
	if (rc) {
		bg_free(p);
		return rc;
	}
	char got[BG_DIGEST_SIZE];
	if ((rc = bg_digest_of(got, data, n)) == 0 && strcmp(got, digest) != 0) {
		/* Bit rot or tampering: drop the entry so the next pull fetches it. */
		unlink(p);
		rc = bg_error(BANGER_ENOTFOUND, "cached blob %s was corrupt (removed)", digest);
	}
	bg_free(p);
	if (rc) {
		bg_free(data);
		return rc;
	}
	*out = data;
	*len = n;
	return 0;
}

void bg_blob_evict(const char *blobs_dir, const char *digest)
{
	char *p = bg_blob_path(blobs_dir, digest);
	if (p)
		unlink(p);
	bg_free(p);
}

void bg_sweep_stale(const char *dir, const char *prefix, int64_t older_than_s)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	int64_t now = bg_wall_seconds();
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    now - (int64_t)st.st_mtime > older_than_s)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}
