/* Import a kernel the user built: copy it (and an optional initrd and
 * config) into a staging tree, detect its format, extract the ELF from a
 * bzImage, then install and record it like a pulled kernel. */
#include "kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copy src into the staging tree as name; the sha256 of the bytes is
 * written to sha (65 bytes) when it is not NULL. */
static int copy_in(bg_kernel_staging *st, const char *src, const char *name, char *sha)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return bg_error_os(bg_code_from_errno(errno), errno, "open %s", src);
	int rc = 0, out = -1;
	bg_sha256 *md = NULL;
	char *buf = NULL;
	struct stat s;
	if (fstat(in, &s) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "stat %s", src);
		goto done;
	}
	if (!S_ISREG(s.st_mode)) {
		rc = bg_error(BANGER_EINVALID, "%s is not a regular file", src);
		goto done;
	}
	if ((uint64_t)s.st_size > BG_MEMBER_MAX_BYTES) {
		rc = bg_error(BANGER_EINVALID, "%s is larger than %llu bytes", src,
			      (unsigned long long)BG_MEMBER_MAX_BYTES);
		goto done;
	}
	if (sha && (rc = bg_sha256_new(&md)))
		goto done;
	const size_t chunk = 1 << 20;
	if (!(buf = bg_malloc(chunk))) {
		rc = bg_error_oom();
		goto done;
	}
	out = openat(st->tree_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = bg_error_os(BANGER_EIO, errno, "create %s/%s", st->tree, name);
		goto done;
	}
	for (;;) {
		ssize_t n = read(in, buf, chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = bg_error_os(BANGER_EIO, errno, "read %s", src);
			goto done;
		}
		if (n == 0)
			break;
		if (md && (rc = bg_sha256_update(md, buf, (size_t)n)))
			goto done;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				rc = bg_error_os(BANGER_EIO, errno, "write %s/%s", st->tree, name);
				goto done;
			}
			off += w;
		}
	}
	if (fsync(out) != 0) {
		rc = bg_error_os(BANGER_EIO, errno, "fsync %s/%s", st->tree, name);
		goto done;
	}
	if (md && (rc = bg_sha256_final_hex(md, sha)))
		goto done;
done:
	if (out >= 0)
		close(out);
	close(in);
	bg_free(buf);
	bg_sha256_free(md);
	return rc;
}

/* The release named in a .config header ("# Linux/x86 6.1.90 Kernel
 * Configuration"), for kernels whose image does not say. */
static void release_from_config(char *dst, size_t cap, const char *config_path)
{
	char *text = NULL;
	if (bg_read_file(&text, NULL, config_path, 16 << 20) != 0) {
		banger_error_clear();
		return;
	}
	const char *p = strstr(text, "\n# Linux/");
	if (p && (p = strchr(p + 9, ' '))) {
		p++;
		size_t n = strcspn(p, " \n");
		if (n && n < cap && strncmp(p + n, " Kernel Configuration", 21) == 0) {
			memcpy(dst, p, n);
			dst[n] = '\0';
		}
	}
	bg_free(text);
}

int bg_kernel_import(bg_env *env, const char *name, const char *kernel_path, const char *initrd_path,
		     const char *config_path, const bg_progress *progress, bg_kernel_record *out)
{
	memset(out, 0, sizeof(*out));
	if (!bg_kernel_name_valid(name))
		return bg_error(BANGER_EINVALID, "kernel name '%s' is not valid (letters, digits, '.', '_', '-', "
				"at most %d, starting with a letter or digit)", name ? name : "", BG_KERNEL_NAME_MAX);
	bg_kernel_record existing;
	int rc = bg_store_kernel_get(&env->store, &existing, name);
	if (rc == 0) {
		bg_kernel_record_clear(&existing);
		return bg_error(BANGER_EEXISTS, "a kernel named '%s' is already installed", name);
	}
	if (rc != BANGER_ENOTFOUND)
		return rc;

	/* Look before copying: a file that is no kernel is refused at once. */
	bg_kernel_info info;
	if ((rc = bg_kernel_detect_file(&info, kernel_path, false)))
		return rc;
	const char *host = bg_host_arch();
	if (strcmp(info.arch, host) != 0)
		return bg_error(BANGER_EUNSUPPORTED, "%s is a kernel for %s; this host is %s", kernel_path,
				info.arch, host);

	bg_kernel_staging st;
	if ((rc = bg_kernel_staging_new(&st, &env->layout)))
		return rc;
	bg_kernel_files files;
	memset(&files, 0, sizeof(files));
	bool elf = info.format == BG_KFMT_ELF;
	char sha[65] = "";
	if ((rc = bg_progress_step(progress, "copy", kernel_path)) ||
	    (rc = copy_in(&st, kernel_path, elf ? "vmlinux" : "bzImage", sha)))
		goto fail;
	files.vmlinux = elf;
	files.bzimage = !elf;
	if (config_path) {
		if ((rc = copy_in(&st, config_path, "config", NULL)))
			goto fail;
		files.config = true;
	}
	if (initrd_path) {
		if ((rc = copy_in(&st, initrd_path, "initrd", NULL)))
			goto fail;
		snprintf(files.initrd, sizeof(files.initrd), "initrd");
	}
	if ((rc = bg_fsync_dir(st.tree)))
		goto fail;
	if ((rc = bg_kernel_finish_tree(env, &st, &files, name, NULL, out, &info)))
		goto fail;
	if (!info.version[0] && config_path)
		release_from_config(info.version, sizeof(info.version), config_path);
	out->name = bg_strdup(name);
	out->version = info.version[0] ? bg_strdup(info.version) : NULL;
	out->source = bg_strdup("import");
	out->sha256 = bg_strdup(sha);
	out->created_at = bg_wall_seconds();
	if (!out->name || (info.version[0] && !out->version) || !out->source || !out->sha256) {
		rc = bg_error_oom();
		goto fail;
	}
	if ((rc = bg_progress_step(progress, "install", name)) || (rc = bg_kernel_commit(env, &st, out, progress)))
		goto fail;
	bg_progress_done(progress, name, 0);
	bg_kernel_staging_drop(&st);
	return 0;
fail:
	bg_error_prefix("import kernel %s", name);
	bg_kernel_staging_drop(&st);
	bg_kernel_record_clear(out);
	return rc;
}
