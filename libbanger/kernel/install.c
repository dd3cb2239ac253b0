/* Installing a kernel: a staging directory under the kernels dir, the
 * artifact unpacked into it with libarchive (only the expected regular
 * files), then one rename into <kernels>/<name> and one INSERT, under the
 * kernels lock.  Every failure before the INSERT removes the staging
 * directory, so nothing is left installed and nothing recorded. */
#include "kernel.h"
#include "../vmm/vmm.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_TIMEOUT_MS 60000
#define STAGING_PREFIX ".staging-"
#define TRASH_PREFIX ".trash-"

static char *lock_path(const bg_layout *l)
{
	return bg_path_join(l->kernels_dir, ".lock");
}

/* ---- staging ---- */

int bg_kernel_staging_new(bg_kernel_staging *st, const bg_layout *l)
{
	memset(st, 0, sizeof(*st));
	st->tree_fd = -1;
	int rc = bg_mkdir_p(l->kernels_dir, 0700);
	if (rc)
		return rc;
	st->dir = bg_sprintf("%s/" STAGING_PREFIX "%ld-XXXXXX", l->kernels_dir, (long)getpid());
	if (!st->dir)
		return bg_error_oom();
	if (!mkdtemp(st->dir)) {
		rc = bg_error_os(bg_code_from_errno(errno), errno, "create a staging directory in %s",
				 l->kernels_dir);
		bg_free(st->dir);
		st->dir = NULL;
		return rc;
	}
	st->tree = bg_path_join(st->dir, "tree");
	if (!st->tree) {
		bg_kernel_staging_drop(st);
		return bg_error_oom();
	}
	if (mkdir(st->tree, 0700) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "mkdir %s", st->tree);
		bg_kernel_staging_drop(st);
		return rc;
	}
	st->tree_fd = open(st->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (st->tree_fd < 0) {
		rc = bg_error_os(BANGER_EIO, errno, "open %s", st->tree);
		bg_kernel_staging_drop(st);
		return rc;
	}
	return 0;
}

void bg_kernel_staging_drop(bg_kernel_staging *st)
{
	if (!st)
		return;
	if (st->tree_fd >= 0)
		close(st->tree_fd);
	if (st->dir) {
		bg_error_saved saved;
		bg_error_save(&saved); /* cleanup must not replace the error being reported */
		bg_remove_tree(st->dir);
		bg_error_restore(&saved);
	}
	bg_free(st->tree);
	bg_free(st->dir);
	memset(st, 0, sizeof(*st));
	st->tree_fd = -1;
}

/* ---- unpacking ---- */

/* The member names an artifact may hold, after an optional "./". */
static bool allowed_member(const char *name, bool *is_dot)
{
	*is_dot = false;
	if (bg_startswith(name, "./"))
		name += 2;
	if (name[0] == '\0' || strcmp(name, ".") == 0) {
		*is_dot = true;
		return true;
	}
	if (strcmp(name, "vmlinux") == 0 || strcmp(name, "config") == 0 || strcmp(name, "bzImage") == 0)
		return true;
	if (!bg_startswith(name, "initrd") || strlen(name) >= sizeof(((bg_kernel_files *)0)->initrd))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

static int write_member(struct archive *a, int fd, const char *name, const char *tarball)
{
	uint64_t total = 0;
	for (;;) {
		const void *blk;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(a, &blk, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(a),
					    "artifact %s: member %s: %s", tarball, name, archive_error_string(a));
		/* A sparse member's holes: seek so the file comes out right. */
		if ((uint64_t)off != total) {
			if (off < 0 || (uint64_t)off < total)
				return bg_error(BANGER_EINVALID, "artifact %s: member %s has overlapping data", tarball, name);
			if (lseek(fd, off, SEEK_SET) < 0)
				return bg_error_os(BANGER_EIO, errno, "seek in %s", name);
			total = (uint64_t)off;
		}
		if (total + n > BG_MEMBER_MAX_BYTES)
			return bg_error(BANGER_EINVALID, "artifact %s: member %s is larger than %llu bytes", tarball,
					name, (unsigned long long)BG_MEMBER_MAX_BYTES);
		size_t done = 0;
		while (done < n) {
			ssize_t w = write(fd, (const char *)blk + done, n - done);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return bg_error_os(BANGER_EIO, errno, "write %s", name);
			}
			done += (size_t)w;
		}
		total += n;
	}
	if (ftruncate(fd, (off_t)total) != 0)
		return bg_error_os(BANGER_EIO, errno, "truncate %s", name);
	if (fsync(fd) != 0)
		return bg_error_os(BANGER_EIO, errno, "fsync %s", name);
	return 0;
}

int bg_kernel_unpack(bg_kernel_staging *st, const char *tarball, bg_kernel_files *files)
{
	memset(files, 0, sizeof(*files));
	struct archive *a = archive_read_new();
	if (!a)
		return bg_error_oom();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	int rc = 0;
	if (archive_read_open_filename(a, tarball, 1 << 16) != ARCHIVE_OK) {
		rc = bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(a), "artifact is not a tar archive: %s",
				  archive_error_string(a));
		archive_read_free(a);
		return rc;
	}
	int members = 0;
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = bg_error_lib(BANGER_EINVALID, "libarchive", archive_errno(a),
					  "artifact is not a valid tar archive: %s", archive_error_string(a));
			break;
		}
		const char *path = archive_entry_pathname(e);
		if (!path) {
			rc = bg_error(BANGER_EINVALID, "artifact has a member without a name");
			break;
		}
		bool is_dot;
		if (!allowed_member(path, &is_dot)) {
			rc = bg_error(BANGER_EINVALID, "artifact member '%s' is not allowed: an artifact holds only "
				      "vmlinux, bzImage, config and one initrd*, at its top level", path);
			break;
		}
		mode_t type = archive_entry_filetype(e);
		if (is_dot) {
			if (type != AE_IFDIR) {
				rc = bg_error(BANGER_EINVALID, "artifact member '%s' is not allowed", path);
				break;
			}
			continue;
		}
		const char *name = bg_startswith(path, "./") ? path + 2 : path;
		if (type != AE_IFREG || archive_entry_hardlink(e) || archive_entry_symlink(e)) {
			rc = bg_error(BANGER_EINVALID, "artifact member '%s' is not a regular file", path);
			break;
		}
		if (bg_startswith(name, "initrd")) {
			if (files->initrd[0]) {
				rc = bg_error(BANGER_EINVALID, "artifact holds two initrds ('%s' and '%s')",
					      files->initrd, name);
				break;
			}
			snprintf(files->initrd, sizeof(files->initrd), "%s", name);
		}
		int fd = openat(st->tree_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			if (errno == EEXIST)
				rc = bg_error(BANGER_EINVALID, "artifact holds '%s' twice", name);
			else
				rc = bg_error_os(BANGER_EIO, errno, "create %s/%s", st->tree, name);
			break;
		}
		rc = write_member(a, fd, name, tarball);
		close(fd);
		if (rc)
			break;
		members++;
		if (strcmp(name, "vmlinux") == 0)
			files->vmlinux = true;
		else if (strcmp(name, "bzImage") == 0)
			files->bzimage = true;
		else if (strcmp(name, "config") == 0)
			files->config = true;
	}
	archive_read_free(a);
	if (!rc && !files->vmlinux && !files->bzimage)
		rc = bg_error(BANGER_EINVALID, "artifact holds no kernel: neither vmlinux nor bzImage%s",
			      members ? "" : " (it is empty)");
	if (!rc)
		rc = bg_fsync_dir(st->tree);
	return rc;
}

/* ---- the finished tree ---- */

int bg_kernel_finish_tree(bg_env *env, bg_kernel_staging *st, bg_kernel_files *files,
			  const char *name, const char *want_format, bg_kernel_record *rec,
			  bg_kernel_info *info)
{
	int rc = 0; /* was returned uninitialised when no step below set it */
	char *vmlinux = bg_path_join(st->tree, "vmlinux");
	char *bzimage = bg_path_join(st->tree, "bzImage");
	char *final = bg_path_join(env->layout.kernels_dir, name);
	if (!vmlinux || !bzimage || !final) {
		rc = bg_error_oom();
		goto out;
	}
	bg_kernel_info bz;
	memset(&bz, 0, sizeof(bz));
	if (files->bzimage) {
		if ((rc = bg_kernel_detect_file(&bz, bzimage, false)))
			goto out;
		if (bz.format != BG_KFMT_BZIMAGE) {
			rc = bg_error(BANGER_EINVALID, "bzImage is not a bzImage (it is %s)",
				      bg_kernel_format_name(bz.format));
			goto out;
		}
	}
	if (files->vmlinux) {
		if ((rc = bg_kernel_detect_file(info, vmlinux, true)))
			goto out;
		if (info->format != BG_KFMT_ELF) {
			rc = bg_error(BANGER_EINVALID, "vmlinux is not an ELF image (it is a %s)",
				      bg_kernel_format_name(info->format));
			goto out;
		}
		if (!info->version[0] && bz.version[0])
			memcpy(info->version, bz.version, sizeof(info->version));
	} else {
		*info = bz;
	}
	/* The primary kernel: the ELF when there is one (what Firecracker
	 * boots), else the bzImage. */
	const char *fmt = bg_kernel_format_name(info->format);
	if (want_format && strcmp(want_format, fmt) != 0) {
		if (strcmp(want_format, "bzimage") == 0 && files->bzimage) {
			/* the catalog calls it a bzImage kernel: that is the primary */
			*info = bz;
			fmt = "bzimage";
		} else {
			rc = bg_error(BANGER_EINVALID, "the catalog says format \"%s\" but the artifact's kernel is %s",
				      want_format, fmt);
			goto out;
		}
	}
	if (files->bzimage && !files->vmlinux) {
		/* A VMM that boots only ELF (Firecracker ≤ 1.16) needs the
		 * embedded one: extract it now, whichever VMM boots it later. */
		rc = bg_kernel_extract_file(bzimage, vmlinux);
		if (rc == BANGER_ENOMEM)
			goto out;
		if (rc) {
			char vmms[64];
			bg_vmm_driver_names(vmms, sizeof(vmms), BG_VMM_CAP_KERNEL_BZIMAGE);
			bg_warn(env, "kernel %s: %s; it will boot under %s only", name,
				banger_error_last() ? banger_error_last()->message : "extraction failed", vmms);
		}
		else
			bg_info(env, "kernel %s: extracted the ELF vmlinux from the bzImage", name);
		rc = 0;
	}
	rec->format = bg_strdup(fmt);
	rec->arch = bg_strdup(info->arch);
	rec->kernel_path = bg_path_join(final, strcmp(fmt, "elf") == 0 ? "vmlinux" : "bzImage");
	if (files->config)
		rec->config_path = bg_path_join(final, "config");
	if (files->initrd[0])
		rec->initrd_path = bg_path_join(final, files->initrd);
	if (!rec->format || !rec->arch || !rec->kernel_path || (files->config && !rec->config_path) ||
	    (files->initrd[0] && !rec->initrd_path))
		rc = bg_error_oom();
out:
	bg_free(vmlinux);
	bg_free(bzimage);
	bg_free(final);
	return rc;
}

/* ---- commit and removal, under the kernels lock ---- */

/* Remove staging and trash directories left by processes that died. */
static void sweep_leftovers(bg_env *env)
{
	DIR *d = opendir(env->layout.kernels_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *rest = NULL;
		if (bg_startswith(e->d_name, STAGING_PREFIX))
			rest = e->d_name + strlen(STAGING_PREFIX);
		else if (bg_startswith(e->d_name, TRASH_PREFIX))
			rest = e->d_name + strlen(TRASH_PREFIX);
		if (!rest)
			continue;
		long pid = strtol(rest, NULL, 10);
		if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *p = bg_path_join(env->layout.kernels_dir, e->d_name);
		if (p) {
			bg_error_saved saved;
			bg_error_save(&saved);
			if (bg_remove_tree(p) == 0)
				bg_info(env, "removed %s, left by an interrupted banger (pid %ld)", p, pid);
			bg_error_restore(&saved);
		}
		bg_free(p);
	}
	closedir(d);
}

/* A directory <kernels>/<name> with no record is the leftover of a crash
 * between rename and INSERT: nothing refers to it, so it goes. */
static int clear_stale(bg_env *env, const char *final)
{
	if (!bg_path_exists(final))
		return 0;
	/* A directory with another store's record is not a leftover: it is
	 * a kernel that store installed, and its database was lost. */
	bg_store_copy c;
	int rc = bg_copy_read(&c, final, BG_KERNEL_COPY_FILE);
	if (rc == 0) {
		bool foreign = strcmp(c.store_id, env->store.id) != 0;
		bg_store_copy_clear(&c);
		if (foreign)
			return bg_error(BANGER_EEXISTS,
					"%s holds a kernel another store installed: run `banger store recover` "
					"to add it back, or move it away", final);
	}
	banger_error_clear();
	bg_warn(env, "removing %s: it is not recorded (left by an interrupted install)", final);
	return bg_remove_tree(final);
}

int bg_kernel_commit(bg_env *env, bg_kernel_staging *st, const bg_kernel_record *rec,
		     const bg_progress *progress)
{
	char *lp = lock_path(&env->layout);
	char *final = bg_path_join(env->layout.kernels_dir, rec->name);
	bg_lock lock = BG_LOCK_INIT;
	int rc;
	if (!lp || !final) {
		rc = bg_error_oom();
		goto out;
	}
	if ((rc = bg_lock_acquire_reporting(&lock, lp, LOCK_TIMEOUT_MS, progress, "the kernels lock")))
		goto out;
	sweep_leftovers(env);
	bg_kernel_record existing;
	rc = bg_store_kernel_get(&env->store, &existing, rec->name);
	if (rc == 0) {
		bg_kernel_record_clear(&existing);
		rc = bg_error(BANGER_EEXISTS, "a kernel named '%s' is already installed", rec->name);
		goto out;
	}
	if (rc != BANGER_ENOTFOUND)
		goto out;
	if ((rc = clear_stale(env, final)))
		goto out;
	if (rename(st->tree, final) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "rename %s to %s", st->tree, final);
		goto out;
	}
	if ((rc = bg_fsync_dir(env->layout.kernels_dir)) || (rc = bg_store_kernel_insert(&env->store, rec))) {
		bg_error_saved saved;
		bg_error_save(&saved);
		if (rename(final, st->tree) != 0)
			bg_remove_tree(final);
		bg_error_restore(&saved);
		goto out;
	}
	bg_info(env, "installed kernel %s (%s) in %s", rec->name, rec->format, final);
out:
	bg_lock_release(&lock);
	bg_free(lp);
	bg_free(final);
	return rc;
}

int bg_kernel_remove(bg_env *env, const char *name)
{
	if (!bg_kernel_name_valid(name))
		return bg_error(BANGER_ENOTFOUND, "no kernel named '%s' is installed", name);
	char *lp = lock_path(&env->layout);
	char *final = bg_path_join(env->layout.kernels_dir, name);
	char *trash = bg_sprintf("%s/" TRASH_PREFIX "%ld-%s", env->layout.kernels_dir, (long)getpid(), name);
	bg_lock lock = BG_LOCK_INIT;
	bool moved = false;
	int rc;
	if (!lp || !final || !trash) {
		rc = bg_error_oom();
		goto out;
	}
	if ((rc = bg_lock_acquire(&lock, lp, LOCK_TIMEOUT_MS)))
		goto out;
	if ((rc = bg_store_begin(&env->store)))
		goto out;
	if ((rc = bg_store_kernel_delete(&env->store, name))) {
		bg_store_rollback(&env->store);
		goto out;
	}
	/* Move the files aside inside the transaction: if that fails the
	 * record stays; if the commit fails the files come back. */
	if (bg_path_exists(final)) {
		if (rename(final, trash) != 0) {
			rc = bg_error_os(BANGER_EIO, errno, "rename %s", final);
			bg_store_rollback(&env->store);
			goto out;
		}
		moved = true;
	}
	if ((rc = bg_store_commit(&env->store))) {
		bg_error_saved saved;
		bg_error_save(&saved);
		bg_store_rollback(&env->store);
		if (moved)
			rename(trash, final);
		bg_error_restore(&saved);
		goto out;
	}
	if (moved && bg_remove_tree(trash) != 0)
		bg_warn(env, "kernel %s is removed but %s could not be deleted: %s", name, trash,
			banger_error_last()->message);
	rc = 0;
	bg_info(env, "removed kernel %s", name);
out:
	bg_lock_release(&lock);
	bg_free(lp);
	bg_free(final);
	bg_free(trash);
	return rc;
}
