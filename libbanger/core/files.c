/* File helpers: atomic writes, mkdir -p, bounded reads, safe rm -rf. */
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool bg_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int bg_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(tmp))
		return bg_error(BANGER_EINVALID, "invalid directory path '%s'", path);
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return bg_error_os(bg_code_from_errno(errno), errno, "mkdir %s", tmp);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return bg_error(BANGER_EIO, "%s is not a directory", path);
	return 0;
}

int bg_read_file(char **out, size_t *len, const char *path, size_t max)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", path);
	bg_buf b = BG_BUF_INIT;
	int rc = 0;
	for (;;) {
		if ((rc = bg_buf_grow(&b, 8192)))
			break;
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = bg_error_os(BANGER_EIO, errno, "read %s", path);
			break;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
		if (b.len > max) {
			rc = bg_error(BANGER_EINVALID, "%s is larger than %zu bytes", path, max);
			break;
		}
	}
	close(fd);
	if (rc) {
		bg_buf_free(&b);
		return rc;
	}
	if (len)
		*len = b.len;
	*out = bg_buf_detach(&b);
	return *out ? 0 : bg_error_oom();
}

int bg_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bg_error_os(BANGER_EIO, errno, "open %s", dir);
	int rc = fsync(fd) == 0 ? 0 : bg_error_os(BANGER_EIO, errno, "fsync %s", dir);
	close(fd);
	return rc;
}

int bg_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return bg_write_file_atomic_owned(path, data, len, mode, (uid_t)-1, (gid_t)-1);
}

int bg_write_file_atomic_owned(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
			       gid_t gid)
{
	if (!path || !*path)
		return bg_error(BANGER_EINVALID, "write: empty path");
	/* a path without a slash is in ".": room for it (a one-letter name
	 * copied leaves two bytes) */
	char *dir = strchr(path, '/') ? bg_strdup(path) : bg_strdup(".");
	char *tmp = bg_sprintf("%s.tmp.%ld", path, (long)getpid());
	int rc = 0, fd = -1;
	if (!dir || !tmp) {
		rc = bg_error_oom();
		goto out;
	}
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		rc = bg_error_os(bg_code_from_errno(errno), errno, "create %s", tmp);
		goto out;
	}
	if ((uid != (uid_t)-1 && uid != geteuid()) || (gid != (gid_t)-1 && gid != getegid())) {
		if (fchown(fd, uid, gid) != 0) {
			rc = bg_error_os(bg_code_from_errno(errno), errno,
					 "cannot give the new %s the owner %ld:%ld of the file it replaces", path,
					 (long)uid, (long)gid);
			goto out;
		}
	}
	if (fchmod(fd, mode) != 0) { /* after fchown, which clears set-id bits */
		rc = bg_error_os(BANGER_EIO, errno, "chmod %s", tmp);
		goto out;
	}
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = bg_error_os(BANGER_EIO, errno, "write %s", tmp);
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "fsync %s", tmp);
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "rename %s", tmp);
		goto out;
	}
	rc = bg_fsync_dir(dir);
out:
	if (fd >= 0)
		close(fd);
	if (rc && tmp)
		unlink(tmp);
	bg_free(dir);
	bg_free(tmp);
	return rc;
}

/* bg_remove_tree recurses once per level, holding a directory stream open
 * in each (openat keeps every step free of symlink races).  What it
 * removes is banger's own (VM, image and kernel directories, a few levels
 * deep), so a budget far above that bounds both the stack and the open
 * descriptors; a deeper tree is left in place with an error naming it. */
#define REMOVE_MAX_DEPTH 256

static int remove_at(int parent, const char *name, int depth)
{
	struct stat st;
	if (depth > REMOVE_MAX_DEPTH)
		return bg_error(BANGER_EINVALID, "directory tree too deep to remove: more than %d levels "
				"(at '%.200s')", REMOVE_MAX_DEPTH, name);
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : bg_error_os(BANGER_EIO, errno, "stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		/* Another process may add an entry while we empty the directory
		 * (another banger locking a VM directory we are deleting makes its
		 * lock file again): empty it again, a few times, before giving up. */
		for (int attempt = 0;; attempt++) {
			int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return errno == ENOENT ? 0 : bg_error_os(BANGER_EIO, errno, "open %s", name);
			DIR *d = fdopendir(fd);
			if (!d) {
				close(fd);
				return bg_error_os(BANGER_EIO, errno, "opendir %s", name);
			}
			struct dirent *e;
			int rc = 0;
			while (rc == 0 && (e = readdir(d))) {
				if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
					continue;
				rc = remove_at(dirfd(d), e->d_name, depth + 1);
			}
			closedir(d);
			if (rc)
				return rc;
			if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
				return 0;
			if (errno != ENOTEMPTY || attempt >= 4)
				return bg_error_os(BANGER_EIO, errno, "rmdir %s", name);
		}
	}
	if (unlinkat(parent, name, 0) != 0 && errno != ENOENT)
		return bg_error_os(BANGER_EIO, errno, "unlink %s", name);
	return 0;
}

int bg_remove_tree(const char *path)
{
	return remove_at(AT_FDCWD, path, 0);
}
